"""``dave``: the one command-line entry point every stage of both engines calls.

Parameters are read from params.yaml (``--params`` or ``DAVE_PARAMS`` to point elsewhere) and
validated before any work, and so are the command's own arguments. Expected failures print one
clear message and exit non-zero. Stage modules are imported by the command that runs them, so
``dave download`` or ``dave check-params`` never imports torch.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from . import config, log
from .errors import DaveError, Terminated

logger = logging.getLogger("dave")

# -- arguments, validated like params.yaml's -----------------------------------------------


def _seed(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise argparse.ArgumentTypeError(f"expected a seed (an integer >= 0), got {text!r}")
    return int(text)


def _threads(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of threads >= 1, got {text!r}")
    return int(text)


def _device(text: str) -> str:
    errors: list[str] = []
    config.check_device(text, "--device", errors)
    if errors:
        raise argparse.ArgumentTypeError(errors[0].split(": ", 1)[1])
    return text


def _name(what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.+-]*", text):
            raise argparse.ArgumentTypeError(f"not a {what}: {text!r}")
        return text

    return check


def _dataset_arg(p: argparse.ArgumentParser, nargs: str | None = None) -> None:
    # names are checked against params.yaml with the rest of the call (every problem at once)
    p.add_argument(
        "datasets" if nargs else "dataset",
        nargs=nargs,
        metavar="DATASET",
        help=f"a dataset: {', '.join(config.DATASETS)}",
    )


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """params.yaml, validated, with the command's --profile/--datasets applied (one way)."""
    params = config.load_params(args.params)
    changed = False
    if getattr(args, "profile", None):
        params["profile"], changed = args.profile, True
    if getattr(args, "datasets", None) and args.command not in DATA_COMMANDS:
        params["datasets"], changed = list(args.datasets), True
    if changed:
        config.validate_params(params, "params.yaml with the command's options")
    return params


def _job(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    params = _params(args)
    job = config.job_config(params, args.dataset, args.model, args.seed)
    log.set_context(args.command, f"{args.dataset}/{args.model}/seed-{args.seed}")
    return job, params


def _runtime(args: argparse.Namespace) -> dict[str, Any]:
    return {"device": args.device, "threads": args.threads, "force": args.force}


# -- commands ------------------------------------------------------------------------------


def cmd_check_params(args: argparse.Namespace) -> int:
    from . import plan

    p = _params(args)
    n = plan.trainings(p)
    study = {"sweeps": "sweep", "readings": "readings"}  # the study each extra point is of
    extra = [f"{v} {study.get(k, k)} point(s)" for k, v in n.items() if k != "grid" and v]
    print(
        f"params OK: profile {p['profile']}, {len(p['datasets'])} dataset(s), "
        f"{sum(n.values())} training job(s) ({n['grid']} in the grid"
        + (f", {', '.join(extra)}" if extra else "")
        + ")"
    )
    return 0


DATA_COMMANDS = ("download", "preprocess", "split", "data")


def cmd_data(args: argparse.Namespace) -> int:
    from .stages import data

    p = _params(args)
    names = ("download", "preprocess", "split") if args.command == "data" else (args.command,)
    cfgs = [config.dataset_config(p, ds) for ds in args.datasets]  # every name, before any work
    for ds, cfg in zip(args.datasets, cfgs, strict=True):
        for name in names:
            log.set_context(name, ds)
            data.STAGES[name](cfg, force=args.force)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .stages.train import train

    job, params = _job(args)
    train(job, params, **_runtime(args))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.point:  # a readings point's own run
        from .stages.points import point_evaluate

        params = _params(args)
        log.set_context("evaluate", f"{args.dataset}/{args.model}/{args.point}/seed-{args.seed}")
        point_evaluate(
            params, args.dataset, args.point, args.seed, model=args.model, **_runtime(args)
        )
        return 0
    from .stages.evaluate import evaluate

    job, params = _job(args)
    evaluate(job, params, **_runtime(args))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .stages.evaluate import evaluate
    from .stages.train import train

    job, params = _job(args)
    train(job, params, **_runtime(args))
    log.set_context("evaluate", f"{args.dataset}/{args.model}/seed-{args.seed}")
    evaluate(job, params, **_runtime(args))
    return 0


def cmd_noise(args: argparse.Namespace) -> int:
    from .stages import studies

    job, params = _job(args)
    studies.noise(job, params, **_runtime(args))
    return 0


def cmd_tsne(args: argparse.Namespace) -> int:
    from .stages import studies

    job, params = _job(args)
    studies.tsne(job, params, **_runtime(args))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .stages.points import sweep

    params = _params(args)
    model = f"{args.model}/" if args.model else ""
    log.set_context("sweep", f"{args.dataset}/{model}{args.point}/seed-{args.seed}")
    sweep(params, args.dataset, args.point, args.seed, model=args.model, **_runtime(args))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .stages import reports

    params = _params(args)
    kind = args.report_command
    out = logging.getLogger(__name__)
    if kind == "metrics":
        log.set_context("report metrics", args.dataset)
        reports.metrics(params, args.dataset, force=args.force)
    elif kind == "tables":
        log.set_context("report tables")
        for path in reports.tables(params, force=args.force):
            out.info("wrote %s", path)
    elif kind == "readings" and args.progress:
        from .layout import RESULTS
        from .reports.studies import readings_progress

        print(readings_progress(params, args.dataset, args.runs_root or RESULTS), end="")
    elif kind in ("noise", "tsne", "sweeps", "readings"):
        log.set_context(f"report {kind}", args.dataset)
        runs_root = getattr(args, "runs_root", None)
        for path in reports.summary(
            kind, params, args.dataset, runs_root=runs_root, force=args.force
        ):
            out.info("wrote %s", path)
    elif kind == "figures":
        log.set_context("report figures")
        for path in reports.figures(params, force=args.force):
            out.info("wrote %s", path)
    else:
        log.set_context("report")
        out.info("wrote %s", reports.report(params, force=args.force))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from .audit import audit

    return audit(
        args.commit,
        rerun=args.rerun,
        repo=args.repo,
        json_out=args.json,
        device=args.device,
        keep_scratch=args.keep_scratch,
        allow_dirty=args.allow_dirty,
        results=args.results,
    )


# -- the parser ----------------------------------------------------------------------------

FORCE_HELP = "recompute even when the stage is up to date"
PROFILE_HELP = "the profile to use instead of params.yaml's `profile` (e.g. paper)"


def _runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, type=_name("profile name"), help=PROFILE_HELP)
    p.add_argument(
        "--device",
        default=None,
        type=_device,
        help="override train.device: auto (CUDA when present), cpu, cuda or cuda:N",
    )
    p.add_argument(
        "--threads",
        type=_threads,
        default=None,
        help="CPU threads for torch (default: train.num_threads)",
    )
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    for name, fn, helptext in (
        ("train", cmd_train, "train one (dataset, model, seed) run, early-stopped on validation"),
        ("evaluate", cmd_evaluate, "evaluate a trained run on the test split"),
        ("run", cmd_run, "train, then evaluate"),
        ("noise", cmd_noise, "Figure 2: test metrics of a trained run under corrupted inputs"),
        ("tsne", cmd_tsne, "Figures 3-4: t-SNE and clustering of a run's posteriors [mu, sigma]"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        _dataset_arg(p)
        p.add_argument("model", help="a model of params.yaml's `models` (e.g. dave, neumf)")
        p.add_argument("seed", type=_seed, help="the run's seed (an integer >= 0)")
        if name == "evaluate":
            p.add_argument(
                "--point",
                default=None,
                type=_name("point"),
                help="a readings point (reading-<scaling>[+input], tune-<name>): its own run",
            )
        _runtime_options(p)
        p.set_defaults(fn=fn)
    helptext = "train one point of a sweep: Figures 5-6, or a reading of the readings study"
    p = sub.add_parser("sweep", help=helptext, description=helptext)
    _dataset_arg(p)
    p.add_argument(
        "point",
        type=_name("point"),
        help="<param>-<value> (e.g. embedding_dim-16) or default (Figures 5-6); "
        "reading-<scaling>[+input] or tune-<name> (the readings study, with --model)",
    )
    p.add_argument("seed", type=_seed, help="the point's seed (an integer >= 0)")
    p.add_argument(
        "--model",
        default=None,
        type=_name("model name"),
        help="the model of a readings point (default: sweeps.model)",
    )
    _runtime_options(p)
    p.set_defaults(fn=cmd_sweep)


def _runs_root(value: str) -> Path:
    """A relative folder laid out like results/ (so a manifest names it portably)."""
    path = Path(value)
    if path.is_absolute() or ".." in path.parts:
        raise argparse.ArgumentTypeError(f"{value}: give a path relative to the repository")
    if not (path / "runs").is_dir() and not (path / "sweep-runs").is_dir():
        raise argparse.ArgumentTypeError(f"{value}: no runs/ or sweep-runs/ folder in it")
    return path


def _add_report_commands(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="tables, study summaries, figures and the report")
    rsub = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    per_dataset = {
        "metrics": "all runs of one dataset in results/metrics/<dataset>.json",
        "noise": "Figure 2's numbers: results/noise/<dataset>.csv and .json",
        "tsne": "Figures 3-4's silhouettes: results/tsne/<dataset>.csv and .json",
        "sweeps": "Figures 5-6's numbers: results/sweeps/<dataset>.csv and .json",
        "readings": "the readings study, selected on validation: results/readings/<dataset>.*",
    }
    whole = {
        "tables": "Table 2, the summary and Tables 4-8 in results/tables/",
        "figures": "Figures 2-6 and the readings figure in results/figures/",
        "write": "results/report.md (tables, figures, claims)",
    }
    for kind, helptext in (*per_dataset.items(), *whole.items()):
        p = rsub.add_parser(kind, help=helptext, description=helptext)
        if kind in per_dataset:
            _dataset_arg(p)
        else:
            p.add_argument(
                "--datasets",
                nargs="*",
                default=None,
                metavar="DATASET",
                help="the datasets to cover instead of params.yaml's `datasets`",
            )
        p.add_argument("--profile", default=None, type=_name("profile name"), help=PROFILE_HELP)
        p.add_argument("--force", action="store_true", help=FORCE_HELP)
        if kind == "readings":
            p.add_argument(
                "--runs-root",
                default=None,
                type=_runs_root,
                metavar="DIR",
                help="read the points' records (train.json, metrics.json) from DIR, a folder "
                "inside the repository laid out like results/ (runs/, sweep-runs/), e.g. the "
                "committed exploration runs results/readings-runs; default: results/",
            )
            p.add_argument(
                "--progress",
                action="store_true",
                help="print every point, run or not yet, and each model's selection once all "
                "of its points have run (Markdown, on stdout); writes nothing",
            )
        p.set_defaults(fn=cmd_report)


def _add_audit_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="where each result of a commit came from, verified; --rerun to re-execute a stage",
    )
    p.add_argument("commit", help="a commit (hash, branch, tag, HEAD~1, ...)")
    p.add_argument(
        "--rerun",
        metavar="STAGE[@ADDRESS]",
        default=None,
        help="re-execute stage runs of that commit in a scratch workspace and compare. A run's "
        "address names it alone: download|preprocess|split@DATASET, "
        "train|evaluate|noise|tsne@DATASET/MODEL/SEED (the main grid), "
        "train|evaluate@DATASET/MODEL/POINT/SEED (a sweep or readings point, e.g. "
        "train@ml-100k/dave/reading-per-entry/0), report@KIND[/DATASET] (metrics, noise, tsne, "
        "sweeps, readings, tables, figures, write); a leading part of an address selects every "
        "run under it (train@ml-100k/dave: points too; report@DATASET: that dataset's reports); "
        "the audit lists each run's address",
    )
    p.add_argument("--repo", default=".", help="the repository (default: the current directory)")
    p.add_argument(
        "--json", default=None, metavar="PATH", help="also write the full report as JSON"
    )
    p.add_argument(
        "--device",
        default="cpu",
        type=_device,
        help="device for re-executed model stages (default cpu)",
    )
    p.add_argument(
        "--keep-scratch", action="store_true", help="keep the scratch workspace of --rerun"
    )
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="pass with a DIRTY line when params.yaml, src/ or the pipeline files differ from "
        "the commit (default: such a tree fails the audit)",
    )
    p.add_argument(
        "--results",
        default=None,
        metavar="DIR",
        help="audit a committed copy of a results folder (e.g. results/paper) instead of the "
        "commit's dvc.lock: its manifests are read as the results/ they describe; --rerun "
        "re-makes what the copy does not keep (the data, from its sources; checkpoints)",
    )
    p.set_defaults(fn=cmd_audit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dave", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params", default=None, help="parameter file (default: params.yaml or $DAVE_PARAMS)"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail on the console (-vv: debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check-params", help="validate params.yaml and count the trainings to run")
    p.add_argument("--profile", default=None, type=_name("profile name"), help=PROFILE_HELP)
    p.set_defaults(fn=cmd_check_params)

    for name, helptext in (
        ("download", "fetch and verify a dataset's source files"),
        ("preprocess", "parse, filter and re-index a dataset"),
        ("split", "leave-one-out split and fixed negatives"),
        ("data", "download, preprocess and split (all three)"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        _dataset_arg(p, nargs="+")
        p.add_argument("--force", action="store_true", help=FORCE_HELP)
        p.set_defaults(fn=cmd_data)

    _add_model_commands(sub)
    _add_report_commands(sub)
    _add_audit_command(sub)
    return parser


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn the first SIGTERM into :class:`Terminated`; later ones are ignored while unwinding,
    so the clean-up the first one started is not cut short."""
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Terminated(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (main() called from a library): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    with _sigterm_unwinds():
        try:
            args = build_parser().parse_args(argv)
            log.setup(-1 if args.quiet else args.verbose)
            return int(args.fn(args) or 0)
        except DaveError as exc:
            logger.error("%s", exc)
            return exc.exit_code
        except KeyboardInterrupt:
            logger.error("interrupted; completed artifacts are kept, partial ones were discarded")
            return 130
        except Terminated:
            logger.error(
                "terminated (SIGTERM); completed artifacts are kept, partial ones were discarded"
            )
            return Terminated.exit_code
        except OSError as exc:  # the machine, not the input: a full disk, permissions, read-only
            logger.debug("details", exc_info=True)
            where = f"{exc.filename}: " if exc.filename else ""
            logger.error(
                "%s%s; completed artifacts are kept, partial ones were discarded (-v for details)",
                where,
                exc.strerror or exc,
            )
            return 1


if __name__ == "__main__":
    sys.exit(main())
