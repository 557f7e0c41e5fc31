"""Peak resident memory of training DAVE on Pinterest- and Yelp-sized data, our path against the
dense per-pair reference, each in a fresh process (so one cannot inflate the other's peak).

The project's mirror holds only the test files of these two datasets, so the benchmark uses
generated data of the same shape (users, items, interactions) and per-user activity (every
Pinterest user ≥ 20 interactions, Yelp ≥ 10, long-tailed means of 27.2 and 28.5); it says so
in its output. With the real training files in the mirror, pass --real.

    python benchmarks/memory.py [--quick] [--threads 2] [--real]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import CACHE, machine, parser, table, target

SHAPES = {  # dataset: (users, items, interactions, min per user) from the paper's Table 2
    "pinterest": (55_187, 9_916, 1_500_809, 20),
    "yelp": (25_677, 25_815, 730_790, 10),
}


def generated_train(dataset: str):  # noqa: ANN201
    import numpy as np
    import scipy.sparse as sp

    from dave_repro.data.synthetic import interactions

    path = CACHE / f"generated-{dataset}.npz"
    if path.is_file():
        return sp.load_npz(path).tocsr()
    n_users, n_items, n, min_per = SHAPES[dataset]
    u, i, _ = interactions(n_users, n_items, n / n_users, min_per, seed=1)
    m = sp.csr_matrix((np.ones(u.size, np.float32), (u, i)), shape=(n_users, n_items))
    path.parent.mkdir(parents=True, exist_ok=True)
    sp.save_npz(path, m)
    return m


def worker(dataset: str, path_kind: str, steps: int, threads: int, real: bool) -> None:
    import numpy as np
    import torch

    from dave_repro import config
    from dave_repro.models.dave import DAVE
    from dave_repro.training.sampling import pair_batches

    torch.set_num_threads(threads)
    if real:
        from common import processed

        from dave_repro.data.dataset import load_split

        train = load_split(processed(dataset)).train
    else:
        train = generated_train(dataset)
    params = config.load_params()
    job = config.job_config(params, dataset, "dave", 0, "paper")
    torch.manual_seed(0)
    model = DAVE(train.shape[0], train.shape[1], job["model_params"])
    model.set_inputs(train)
    gen = torch.Generator().manual_seed(0)
    batches = pair_batches(
        train,
        job["model_params"]["negative_ratio"],
        job["model_params"]["batch_size"],
        np.random.default_rng(0),
        None,
        torch.device("cpu"),
    )
    if path_kind == "reference":
        sys.path.insert(0, str(Path(__file__).parent))
        from reference_dave import DenseReference

        ref = DenseReference(model, train)
        step = ref.train_step
    else:

        def step(b):  # noqa: ANN001, ANN202
            return model.train_step(b, gen)

    t = time.perf_counter()
    for k, b in enumerate(batches):
        if k == steps:
            break
        step(b)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "peak_mb": peak_kb / 1024,
                "seconds_per_step": (time.perf_counter() - t) / steps,
                "users": train.shape[0],
                "items": train.shape[1],
                "interactions": int(train.nnz),
            }
        )
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--real", action="store_true", help="use the real training files from the mirror"
    )
    p.add_argument(
        "--worker", nargs=3, metavar=("DATASET", "PATH", "STEPS"), help=argparse_hidden()
    )
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]), args.threads, args.real)
        return
    steps = {"ours": 20 if args.quick else 100, "reference": 5 if args.quick else 20}
    rows, lines = [], []
    for ds in SHAPES:
        if not args.real:
            generated_train(ds)  # build once, outside the measured processes
        for kind in ("ours", "reference"):
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                ds,
                kind,
                str(steps[kind]),
                "--threads",
                str(args.threads),
            ]
            cmd += ["--real"] if args.real else []
            out = (
                subprocess.run(cmd, capture_output=True, text=True, check=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            r = json.loads(out)
            rows.append(
                {
                    "dataset": ds,
                    "path": kind,
                    "data": "real" if args.real else "generated, same shape",
                    "users × items": f"{r['users']:,} × {r['items']:,}",
                    "interactions": f"{r['interactions']:,}",
                    "steps": steps[kind],
                    "peak RSS (MB)": f"{r['peak_mb']:,.0f}",
                    "s/step": f"{r['seconds_per_step']:.3f}",
                    "_peak": r["peak_mb"],
                }
            )
    print(f"machine: {machine()}")
    print(
        table(
            rows,
            [
                "dataset",
                "path",
                "data",
                "users × items",
                "interactions",
                "steps",
                "peak RSS (MB)",
                "s/step",
            ],
        )
    )
    peaks = {(r["dataset"], r["path"]): r["_peak"] for r in rows}
    print(
        "ratios (same run): peak memory ours / reference: "
        + ", ".join(f"{ds} {peaks[(ds, 'ours')] / peaks[(ds, 'reference')]:.2f}" for ds in SHAPES)
    )
    for ds in SHAPES:
        lines.append(
            target(
                f"peak memory training DAVE on {ds}",
                peaks[(ds, "ours")] / 1024,
                4,
                " GB",
                higher_is_better=False,
            )
        )
    print("\n".join(lines))


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
