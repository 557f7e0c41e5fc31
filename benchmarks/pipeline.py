"""Data and orchestration times: preprocess + split per dataset, and how long `dvc repro` and
`snakemake -n` take when everything is up to date for the full configuration (five datasets,
every model of the paper profile, its seeds). Scratch workspaces live in benchmarks/.cache.

    DAVE_DATA_MIRROR=/path/to/mirror python benchmarks/pipeline.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from common import CACHE, REPO, machine, parser, table, target

BIN = Path(sys.executable).parent


def sh(cwd: Path, *cmd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    proc = subprocess.run(list(cmd), cwd=cwd, env=full, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def time_data_stages(dataset: str, params: dict, mirror: str) -> float:
    from dave_repro import config
    from dave_repro.stages import data as stages

    ws = CACHE / "pipeline-data"
    ws.mkdir(parents=True, exist_ok=True)
    old = Path.cwd()
    os.chdir(ws)
    os.environ["DAVE_DATA_MIRROR"] = mirror
    try:
        cfg = config.dataset_config(params, dataset)
        stages.download(cfg)
        t = time.perf_counter()
        stages.preprocess(cfg, force=True)
        stages.split(cfg, force=True)
        return time.perf_counter() - t
    finally:
        os.chdir(old)


def generated_pinterest_mirror() -> tuple[str, dict]:
    """Pinterest in its real file format and shape (the mirror holds only its test file)."""
    from dave_repro.data.synthetic import write_mirror

    root = CACHE / "mirror-generated"
    sums_file = root / "checksums.yaml"
    if sums_file.is_file():
        return str(root), yaml.safe_load(sums_file.read_text())
    sums = write_mirror(
        root, "pinterest", n_users=55_187, n_items=9_916, mean_per_user=27.2, seed=1
    )
    sums_file.write_text(yaml.safe_dump(sums))
    return str(root), sums


def up_to_date_project() -> Path:
    """A project whose every output exists and is recorded, for the full configuration."""
    proj = CACHE / "pipeline-full"
    if proj.exists():
        shutil.rmtree(proj)
    proj.mkdir(parents=True)
    for name in ("Snakefile", "dvc.yaml"):
        shutil.copy(REPO / name, proj / name)
    for d in ("workflow", "src"):
        shutil.copytree(
            REPO / d, proj / d, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["datasets"] = ["ml-100k", "ml-1m", "yelp", "digital-music", "pinterest"]
    p["profile"] = "paper"
    (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    sh(proj, "git", "init", "-q")
    sh(proj, "dvc", "init", "-q")
    sh(proj, "dvc", "config", "core.analytics", "false")
    # every Snakemake output, marked up to date without running anything
    # every output of the plan as a stand-in (--touch alone creates nothing that is missing):
    # a path without a suffix is a directory output (downloads, the tables folder)
    from dvc.repo import Repo

    summary = sh(proj, "snakemake", "-n", "--summary", "results/tables").stdout.splitlines()
    outs = [proj / line.split("\t")[0] for line in summary[1:]]
    with Repo(str(proj)) as repo:  # and DVC's outputs that no Snakemake rule names (curves)
        outs += [Path(o.fs_path) for stage in repo.index.stages for o in stage.outs]
    for out in outs:
        if out.exists():
            continue
        if out.suffix:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("stand-in")
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / "stand-in").write_text("stand-in")
    sh(proj, "snakemake", "--cores", "1", "--touch", "results/tables")
    sh(proj, "dvc", "commit", "-f", "-q")
    return proj


def main() -> None:
    parser(__doc__.splitlines()[0]).parse_args()  # --help, and the shared options
    mirror = os.environ.get("DAVE_DATA_MIRROR")
    if not mirror:
        raise SystemExit("set DAVE_DATA_MIRROR to the data mirror")
    from dave_repro import config, plan

    params = config.load_params(REPO / "params.yaml")
    rows, lines = [], []
    for ds in ("ml-100k", "ml-1m"):
        s = time_data_stages(ds, params, mirror)
        rows.append({"measure": f"preprocess + split {ds} (real data)", "seconds": f"{s:.2f}"})
        if ds == "ml-1m":
            lines.append(target("preprocess + split of ml-1m", s, 10, " s", higher_is_better=False))
    gmirror, sums = generated_pinterest_mirror()
    gparams = {**params, "data": {**params["data"], "checksums": sums}}
    s = time_data_stages("pinterest", gparams, gmirror)
    rows.append(
        {
            "measure": "preprocess + split pinterest (generated, same shape and format)",
            "seconds": f"{s:.2f}",
        }
    )
    lines.append(target("preprocess + split of pinterest", s, 30, " s", higher_is_better=False))

    proj = up_to_date_project()
    jobs = sh(proj, "snakemake", "results/tables", "-n", "--quiet", "rules")
    t = time.perf_counter()
    dry = sh(proj, "snakemake", "-n", "results/tables")
    t_smk = time.perf_counter() - t
    t = time.perf_counter()
    rep = sh(proj, "dvc", "repro")
    t_dvc = time.perf_counter() - t
    n_jobs = len(plan.grid(yaml.safe_load((proj / "params.yaml").read_text())))
    ok = "Nothing to be done" in dry.stdout + dry.stderr and "up to date" in rep.stdout.lower()
    rows.append(
        {
            "measure": f"snakemake -n, up to date ({n_jobs} training runs in the grid)",
            "seconds": f"{t_smk:.2f}",
        }
    )
    rows.append({"measure": "dvc repro, up to date", "seconds": f"{t_dvc:.2f}"})
    print(f"machine: {machine()}")
    print(table(rows, ["measure", "seconds"]))
    print(f"both engines report nothing to do: {ok}" + ("" if ok else f"\n{jobs.stdout[-1500:]}"))
    print(f"ratios (same run): dvc repro / snakemake -n = {t_dvc / t_smk:.2f}")
    lines.append(
        target(
            "up-to-date snakemake -n (full configuration)", t_smk, 10, " s", higher_is_better=False
        )
    )
    lines.append(
        target("up-to-date dvc repro (full configuration)", t_dvc, 10, " s", higher_is_better=False)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
