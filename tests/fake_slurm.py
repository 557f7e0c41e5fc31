"""A stand-in for the SLURM commands the Snakemake SLURM executor plugin calls, for tests.

``sbatch`` records its arguments (one JSON line per submission in ``$FAKE_SLURM_DIR/sbatch.jsonl``)
and runs the job it was given (``--wrap``) at once, in the requested directory, as a node would;
``sacct``/``squeue`` report the jobs' final states; ``srun`` runs its command; ``sinfo`` and
``scontrol`` describe a one-partition cluster. Installed by :func:`install` as small shell
wrappers on a directory put first on ``PATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NAMES = ("sbatch", "srun", "sacct", "squeue", "sinfo", "scontrol", "sacctmgr", "sshare", "scancel")


def install(bin_dir: Path, state_dir: Path) -> dict[str, str]:
    """Write the wrappers; returns the environment variables that put them in use."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        w = bin_dir / name
        w.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" {name} "$@"\n'
        )
        w.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    return {"FAKE_SLURM_DIR": str(state_dir), "PATH": path}


def _option(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1 :]
    return None


def sbatch(args: list[str], state: Path) -> int:
    job_id = str(os.getpid())
    with open(state / "sbatch.jsonl", "a") as fh:
        fh.write(json.dumps({"id": job_id, "argv": args}) + "\n")
    wrap = _option(args, "--wrap")
    if wrap is None:
        wrap = sys.stdin.read()
    name = _option(args, "--job-name") or ""
    log = (_option(args, "--output") or "slurm-%j.log").replace("%j", job_id)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLURM_JOB_ID": job_id}
    if _option(args, "--gpus"):
        env["SLURM_GPUS"] = _option(args, "--gpus") or ""
    with open(log, "w") as out:
        rc = subprocess.run(
            ["sh", "-c", wrap],
            cwd=_option(args, "-D"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    (state / "jobs").mkdir(exist_ok=True)
    (state / "jobs" / job_id).write_text(
        json.dumps({"name": name, "state": "COMPLETED" if rc == 0 else "FAILED"})
    )
    print(job_id)
    return 0


def status(args: list[str], state: Path) -> int:
    name = _option(args, "--name")
    for f in sorted((state / "jobs").glob("*")) if (state / "jobs").is_dir() else []:
        job = json.loads(f.read_text())
        if name is None or job["name"] == name:
            print(f"{f.name}|{job['state']}")
    return 0


def srun(args: list[str]) -> int:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 1
    os.execvp(args[i], args[i:])
    return 1  # not reached


def main(argv: list[str]) -> int:
    name, args = argv[0], argv[1:]
    state = Path(os.environ.get("FAKE_SLURM_DIR", "."))
    if name == "sbatch":
        return sbatch(args, state)
    if name in ("sacct", "squeue"):
        return 0 if "Account%256" in " ".join(args) else status(args, state)
    if name == "srun":
        return srun(args)
    if name == "sinfo":
        print("PARTITION\ndebug*")
    elif name == "scontrol":
        print("MinJobAge               = 300 sec\nMaxArraySize            = 1001")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
