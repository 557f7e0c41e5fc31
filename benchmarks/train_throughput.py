"""Training throughput of DAVE on ml-1m (real data, paper settings): our path against the plain
dense per-pair reference (benchmarks/reference_dave.py), same machine, same threads, same run.

    DAVE_DATA_MIRROR=/path/to/mirror python benchmarks/train_throughput.py [--quick] [--threads 2]
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from common import machine, matmul_rate, parser, processed, setup_torch, sync, table, target
from reference_dave import DenseReference

from dave_repro import config
from dave_repro.data.dataset import load_split
from dave_repro.models.dave import DAVE
from dave_repro.training.sampling import PairBatch, epoch_pairs


def step_flops(model: DAVE, batch: PairBatch) -> float:
    """Multiply-adds ×2 of one step of our path (the matrix products; elementwise work ignored)."""
    p = model.params
    d, h = p["embedding_dim"], p["encoder_hidden"][0]
    prepared = model.prepare(batch)
    total = 0.0
    for side, dim in ((prepared.users, model.n_items), (prepared.items, model.n_users)):
        n, nnz = side.ids.numel(), side.rows.indices.numel()
        enc = 2 * nnz * h * 2 + 2 * n * h * 2 * d * 3  # sparse input layer fwd+bwd, head fwd+bwd
        dec = 2 * n * (d * h + h * dim) * 3  # decoder fwd + two backward products
        total += enc + dec
    return float(total)


def run(
    paths: dict[str, tuple[Callable[[PairBatch], object], int]],
    batches: list[PairBatch],
    device: str,
    rounds: int,
) -> dict[str, float]:
    """Seconds each path spends on its timed steps, the paths interleaved in ``rounds``.

    A shared machine's speed drifts by tens of percent over a minute; timing the paths one after
    the other put that drift into their ratios, so each round runs a slice of every path's steps
    in turn. Every path sees the same batches in the same order, after two untimed warm-up steps.
    """
    seconds = dict.fromkeys(paths, 0.0)
    done = dict.fromkeys(paths, 0)
    for step, _ in paths.values():
        for b in batches[:2]:
            step(b)
    for r in range(rounds):
        for name, (step, n) in paths.items():
            upto = n * (r + 1) // rounds
            sync(device)
            t = time.perf_counter()
            for b in batches[2 + done[name] : 2 + upto]:
                step(b)
            sync(device)
            seconds[name] += time.perf_counter() - t
            done[name] = upto
    return seconds


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--decoder-sample",
        type=float,
        default=0.25,
        help="share of decoded entries for the decoder_sample row (default 0.25)",
    )
    args = p.parse_args()
    setup_torch(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    if device == "auto":
        device = "cpu"
    params = config.load_params()
    job = config.job_config(params, "ml-1m", "dave", 0, "paper")
    split = load_split(processed("ml-1m"))
    users, items, labels = epoch_pairs(
        split.train, job["model_params"]["negative_ratio"], np.random.default_rng(0)
    )
    bs = job["model_params"]["batch_size"]
    n_fast, n_ref = (12, 5) if args.quick else (60, 20)
    # on the host, as the trainer makes them: our step's timing includes the host-side
    # preparation of each batch (DAVE.prepare) and its copy to the device
    batches = [
        PairBatch(
            torch.as_tensor(users[s : s + bs]),
            torch.as_tensor(items[s : s + bs]),
            torch.as_tensor(labels[s : s + bs]),
        )
        for s in range(0, (max(n_fast, n_ref) + 2) * bs, bs)
    ]
    torch.manual_seed(0)
    fast = DAVE(split.n_users, split.n_items, job["model_params"]).to(device)
    fast.set_inputs(split.train, torch.device(device))
    ref_model = copy.deepcopy(fast)

    def variant(**overrides: object) -> DAVE:
        """Our model with some parameters changed, starting from the same weights as ``fast``."""
        m = DAVE(split.n_users, split.n_items, {**job["model_params"], **overrides}).to(device)
        m.load_state_dict(fast.state_dict())
        m.set_inputs(split.train, torch.device(device))
        return m

    # The bf16 option (`precision: bf16`): not exact, so it is shown for information only.
    half = variant(precision="bf16")
    # decoder_sample < 1: Eq. 3's sum over entries estimated from a uniform share of them (equal in
    # expectation, so exact in the sense, but noisier; not the default).
    sampled = variant(decoder_sample=args.decoder_sample)
    # A floor, not the objective: the step with both decoders removed (no reconstruction term).
    # Whatever an exact path does about Eq. 3, it still encodes every pair's user and item, trains
    # F and D and updates the encoders with Adam; this row is what that alone costs.
    floor = copy.deepcopy(fast)
    for vae in (floor.user_vae, floor.item_vae):
        vae.reconstruction_nll = lambda x, *a, **k: x.new_zeros(())
    gen = torch.Generator(device=device).manual_seed(0)
    ref = DenseReference(ref_model, split.train)

    # path -> (step function, steps timed); all paths see the same batches, in this order.
    paths = {
        "ours (sparse, distinct rows once)": (lambda b: fast.train_step(b, gen), n_fast),
        "dense per-pair reference": (
            lambda b: ref.train_step(
                PairBatch(b.users.to(device), b.items.to(device), b.labels.to(device))
            ),
            n_ref,
        ),
        f"ours, decoder_sample {args.decoder_sample:g} (unbiased, not default)": (
            lambda b: sampled.train_step(b, gen),
            n_fast,
        ),
        "ours, precision bf16 (not exact)": (lambda b: half.train_step(b, gen), n_fast),
        "floor: ours without the decoders (not the objective)": (
            lambda b: floor.train_step(b, gen),
            n_fast,
        ),
    }
    seconds = run(paths, batches, device, rounds=3 if args.quick else 5)
    pairs = {name: paths[name][1] * bs / t for name, t in seconds.items()}
    pairs_fast, pairs_ref, pairs_sampled, pairs_half, pairs_floor = pairs.values()
    flops = np.mean([step_flops(fast, b) for b in batches[2 : n_fast + 2]])
    peak = matmul_rate(device)
    achieved = flops * pairs_fast / bs / 1e9  # FLOP per step × steps per second
    epoch_pairs_n = split.train.nnz * (1 + job["model_params"]["negative_ratio"])
    epoch_min = epoch_pairs_n / pairs_fast / 60
    print(f"machine: {machine()}")
    print(
        f"ml-1m: {split.n_users} users, {split.n_items} items, {split.train.nnz} training interactions; "
        f"batch {bs}, negative ratio {job['model_params']['negative_ratio']}, d={job['model_params']['embedding_dim']}"
    )
    rows = [
        {
            "path": name,
            "steps": n,
            "pairs/s": f"{pairs[name]:,.0f}",
            "ms/step": f"{1000 * seconds[name] / n:.1f}",
        }
        for name, (_, n) in paths.items()
    ]
    rows[0].update(
        {"GFLOP/s": f"{achieved:.0f}", "of matmul peak": f"{100 * achieved / peak:.0f}%"}
    )
    print(table(rows, ["path", "steps", "pairs/s", "ms/step", "GFLOP/s", "of matmul peak"]))
    print(f"measured fp32 matmul rate: {peak:.0f} GFLOP/s; one epoch = {epoch_pairs_n:,} pairs")
    print(
        f"ratios (same run): throughput {pairs_fast / pairs_ref:.2f}x the reference; "
        f"{100 * achieved / peak:.0f}% of the matmul rate; "
        f"decoder_sample {args.decoder_sample:g} {pairs_sampled / pairs_ref:.2f}x "
        f"(epoch {epoch_pairs_n / pairs_sampled / 60:.1f} min); "
        f"bf16 option {pairs_half / pairs_ref:.2f}x (not exact, not counted for the target); "
        f"floor without decoders {pairs_floor / pairs_ref:.2f}x (our step minus Eq. 3: a ceiling for this code)"
    )
    print(target("training throughput vs dense reference", pairs_fast / pairs_ref, 8, "x"))
    print(target("DAVE epoch on ml-1m", epoch_min, 10, " min", higher_is_better=False))


if __name__ == "__main__":
    main()
