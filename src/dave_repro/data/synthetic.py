"""Generated data in the real source formats, for tests and benchmarks of datasets whose files
are not at hand. Shapes and per-user activity are configurable; nothing here is presented as a
real dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..hashing import sha256_file


def interactions(
    n_users: int, n_items: int, mean_per_user: float, min_per_user: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, timestamp) with long-tailed user activity and item popularity, no repeats."""
    rng = np.random.default_rng(seed)
    sigma = 1.0
    mu = np.log(max(mean_per_user - min_per_user, 1.0)) - sigma**2 / 2
    counts = np.minimum(
        min_per_user + rng.lognormal(mu, sigma, n_users).astype(np.int64), n_items // 2
    )
    pop = 1.0 / (rng.permutation(n_items) + 10.0) ** 0.8  # long-tailed item popularity
    cdf = np.cumsum(pop / pop.sum())
    have = np.zeros(n_users, dtype=np.int64)
    pairs = np.empty(0, dtype=np.int64)
    while True:  # draw, drop repeated (user, item) pairs, top up the users still short
        need = counts - have
        if not need.any():
            break
        u = np.repeat(np.arange(n_users), 2 * need + 2)  # oversample; the excess is trimmed below
        i = np.minimum(np.searchsorted(cdf, rng.random(u.size)), n_items - 1)
        pairs = np.sort(np.concatenate([pairs, u * n_items + i]))
        pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]  # (np.unique's hash path is slow here)
        have = np.bincount(pairs // n_items, minlength=n_users)
        over = have > counts  # keep exactly `counts` per user
        if over.any():
            order = rng.permutation(pairs.size)
            keep_rank = np.empty(pairs.size, dtype=np.int64)
            pu = pairs[order] // n_items
            srt = np.argsort(pu, kind="stable")
            ranks = np.arange(pairs.size) - np.searchsorted(pu[srt], pu[srt])
            keep_rank[order[srt]] = ranks
            pairs = pairs[keep_rank < counts[pairs // n_items]]
            have = np.bincount(pairs // n_items, minlength=n_users)
    u, i = pairs // n_items, pairs % n_items
    ts = 880_000_000 + rng.integers(0, 10_000_000, u.size)
    return u, i, ts


def write_mirror(
    root: Path,
    dataset: str,
    n_users: int | None = None,
    n_items: int = 300,
    mean_per_user: float = 25.0,
    seed: int = 0,
) -> dict[str, str]:
    """Write ``dataset`` in its canonical plain form under ``root/<dataset>/``.

    Returns the ``data.checksums`` entries that make the download stage accept the files.
    """
    d = root / dataset
    if n_users is None:  # the 5-core of digital-music needs more users to keep enough items
        n_users = 300 if dataset == "digital-music" else 60
    rng = np.random.default_rng(seed + 1)
    min_per = {"yelp": 5, "digital-music": 3}.get(dataset, 20)
    u, i, ts = interactions(n_users, n_items, mean_per_user, min(min_per, n_items - 2), seed)
    written: dict[str, Path] = {}

    def put(rel: str, text: str) -> None:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        written[Path(rel).name] = p

    rating = rng.integers(1, 6, u.size)
    if dataset == "ml-100k":
        put(
            "u.data",
            "".join(
                f"{a + 1}\t{b + 1}\t{r}\t{t}\n" for a, b, r, t in zip(u, i, rating, ts, strict=True)
            ),
        )
    elif dataset == "ml-1m":
        put(
            "ratings.dat",
            "".join(
                f"{a + 1}::{b + 1}::{r}::{t}\n" for a, b, r, t in zip(u, i, rating, ts, strict=True)
            ),
        )
    elif dataset == "yelp":
        # repeated ratings of the same pair, as in the eALS file
        rep = rng.random(u.size) < 0.05
        uu, ii = np.concatenate([u, u[rep]]), np.concatenate([i, i[rep]])
        tt = np.concatenate([ts, ts[rep] + 86_400])
        rr = rng.integers(1, 6, uu.size)
        put(
            "eals/yelp.rating",
            "".join(
                f"{a}\t{b}\t{float(r)}\t{t}\n" for a, b, r, t in zip(uu, ii, rr, tt, strict=True)
            ),
        )
    elif dataset == "digital-music":
        put(
            "amazon2018/Digital_Music.csv",
            "".join(
                f"B{b:09d},A{a:08X},{float(r)},{t}\n"
                for a, b, r, t in zip(u, i, rating, ts, strict=True)
            ),
        )
    elif dataset == "pinterest":
        test_rows = np.zeros(u.size, bool)
        first = np.unique(u, return_index=True)[1]
        test_rows[first] = True
        put(
            "ncf/pinterest-20.train.rating",
            "".join(f"{a}\t{b}\t1\t0\n" for a, b in zip(u[~test_rows], i[~test_rows], strict=True)),
        )
        put(
            "ncf/pinterest-20.test.rating",
            "".join(f"{a}\t{b}\t1\t0\n" for a, b in zip(u[test_rows], i[test_rows], strict=True)),
        )
    else:
        raise ValueError(dataset)
    return {f"{dataset}/{name}": f"sha256:{sha256_file(p)}" for name, p in written.items()}
