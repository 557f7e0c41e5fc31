"""``dave``: the one command-line entry point every stage of both engines calls.

Parameters are read from params.yaml (``--params`` or ``DAVE_PARAMS`` to point elsewhere) and
validated before any work. Expected failures print one clear message and exit non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

from . import config, log
from .errors import DaveError, Terminated

logger = logging.getLogger("dave")


def _params(args: argparse.Namespace) -> dict[str, Any]:
    return config.load_params(args.params)


def cmd_check_params(args: argparse.Namespace) -> int:
    p = _params(args)
    jobs = config.grid(p, args.profile)
    print(
        f"params OK: profile {args.profile or p['profile']}, {len(p['datasets'])} dataset(s), {len(jobs)} training job(s)"
    )
    return 0


def _data_stage(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from .data import stages

        p = _params(args)
        fn = {
            "download": stages.run_download,
            "preprocess": stages.run_preprocess,
            "split": stages.run_split,
        }[name]
        for ds in args.datasets:
            log.set_context(name, ds)
            fn(config.dataset_config(p, ds), force=args.force)
        return 0

    return run


def cmd_data(args: argparse.Namespace) -> int:
    from .data import stages

    p = _params(args)
    for ds in args.datasets:
        cfg = config.dataset_config(p, ds)
        for name, fn in (
            ("download", stages.run_download),
            ("preprocess", stages.run_preprocess),
            ("split", stages.run_split),
        ):
            log.set_context(name, ds)
            fn(cfg, force=args.force)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dave", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params", default=None, help="parameter file (default: params.yaml or $DAVE_PARAMS)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check-params", help="validate params.yaml and print the job grid size")
    p.add_argument("--profile", default=None)
    p.set_defaults(fn=cmd_check_params)

    for name, helptext in (
        ("download", "fetch and verify a dataset's source files"),
        ("preprocess", "parse, filter and re-index a dataset"),
        ("split", "leave-one-out split and fixed negatives"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("datasets", nargs="+", metavar="DATASET")
        p.add_argument("--force", action="store_true", help="recompute even when up to date")
        p.set_defaults(fn=_data_stage(name))

    p = sub.add_parser("data", help="download, preprocess and split (all three)")
    p.add_argument("datasets", nargs="+", metavar="DATASET")
    p.add_argument("--force", action="store_true")
    p.set_defaults(fn=cmd_data)

    _add_model_commands(sub)
    _add_report_commands(sub)
    _add_audit_command(sub)
    return parser


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    from . import commands

    commands.add_model_commands(sub)


def _add_report_commands(sub: argparse._SubParsersAction) -> None:
    from . import commands

    commands.add_report_commands(sub)


def _add_audit_command(sub: argparse._SubParsersAction) -> None:
    from . import commands

    commands.add_audit_command(sub)


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
        except (
            OSError
        ) as exc:  # the machine, not the input: a full disk, permissions, a read-only mount
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
