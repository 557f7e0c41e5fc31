"""Evaluation speed: sampled (100 fixed candidates) and full-ranking evaluation of all ml-1m users
with a DAVE model of the paper's size, against a plain per-user reference in the same run.

    DAVE_DATA_MIRROR=/path/to/mirror python benchmarks/evaluate.py [--quick] [--threads 2]
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import machine, parser, processed, setup_torch, sync, table, target

from dave_repro import config
from dave_repro.data.dataset import load_split
from dave_repro.evaluation.ranking import full_ranks, sampled_ranks
from dave_repro.models.dave import DAVE


@torch.no_grad()
def reference_full_ranks(model: DAVE, split, users: np.ndarray) -> np.ndarray:
    """One user at a time, F applied to every (user, item) pair explicitly."""
    out = np.empty(users.size, dtype=np.int64)
    dev = model.device
    all_items = torch.arange(split.n_items, device=dev)
    for k, u in enumerate(users):
        x = model.embed("user", torch.tensor([int(u)], device=dev))
        y = model.embed("item", all_items)
        scores = model.predictor(x * y).squeeze(-1)
        train = split.train[int(u)].indices
        mask = torch.ones(split.n_items, dtype=torch.bool, device=dev)
        mask[torch.as_tensor(train, device=dev)] = False
        t = int(split.test_item[u])
        mask[t] = False
        out[k] = 1 + int(((scores >= scores[t]) & mask).sum())
    return out


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    setup_torch(args.threads)
    device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    params = config.load_params()
    job = config.job_config(params, "ml-1m", "dave", 0, "paper")
    split = load_split(processed("ml-1m"))
    torch.manual_seed(0)
    model = DAVE(split.n_users, split.n_items, job["model_params"]).to(device)
    model.set_inputs(split.train, torch.device(device))
    model.eval()

    sync(device)
    t = time.perf_counter()
    sampled_ranks(model, split, "test")
    sync(device)
    t_sampled = time.perf_counter() - t
    model.train()
    model.eval()  # drop cached embeddings: full ranking pays for them again
    t = time.perf_counter()
    rf = full_ranks(model, split, "test", params["evaluation"]["user_batch"])
    sync(device)
    t_full = time.perf_counter() - t

    n_ref = 50 if args.quick else 300
    users = np.random.default_rng(0).choice(split.n_users, n_ref, replace=False)
    t = time.perf_counter()
    ref = reference_full_ranks(model, split, users)
    t_ref = (time.perf_counter() - t) / n_ref * split.n_users  # extrapolated to all users
    agree = bool((ref == rf[users]).all())

    print(f"machine: {machine()}")
    print(
        f"ml-1m: {split.n_users} users × {split.n_items} items; DAVE d={job['model_params']['embedding_dim']}"
    )
    print(
        table(
            [
                {
                    "evaluation": "sampled (100 candidates), all users",
                    "seconds": f"{t_sampled:.2f}",
                },
                {"evaluation": "full ranking, all users", "seconds": f"{t_full:.2f}"},
                {
                    "evaluation": f"full ranking, per-user reference (extrapolated from {n_ref} users)",
                    "seconds": f"{t_ref:.1f}",
                },
            ],
            ["evaluation", "seconds"],
        )
    )
    print(f"reference ranks equal ours on the {n_ref} users checked: {agree}")
    print(
        f"ratios (same run): full ranking {t_ref / t_full:.1f}x faster than the per-user reference; "
        f"sampled is {t_full / t_sampled:.0f}x cheaper than full"
    )
    print(
        target(
            "full-ranking evaluation of all ml-1m users", t_full, 15, " s", higher_is_better=False
        )
    )
    print(
        target("sampled evaluation of all ml-1m users", t_sampled, 2, " s", higher_is_better=False)
    )
    if not agree:
        raise SystemExit("ranks differ from the reference")


if __name__ == "__main__":
    main()
