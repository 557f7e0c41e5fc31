"""Model and report subcommands (kept apart so `dave download` never imports torch)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from . import config, log


def _job(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    params = config.load_params(args.params)
    job = config.job_config(params, args.dataset, args.model, args.seed, args.profile)
    log.set_context(args.command, f"{args.dataset}/{args.model}/seed-{args.seed}")
    return job, params


def cmd_train(args: argparse.Namespace) -> int:
    from .runs import train_stage

    job, params = _job(args)
    train_stage(job, params, device=args.device, threads=args.threads, force=args.force)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .runs import evaluate_stage

    if args.point:  # a readings point's own run
        from .studies import point_evaluate_stage

        params = config.load_params(args.params)
        if args.profile:
            params["profile"] = args.profile
            config.validate_params(params)
        log.set_context("evaluate", f"{args.dataset}/{args.model}/{args.point}/seed-{args.seed}")
        point_evaluate_stage(
            params,
            args.dataset,
            args.point,
            args.seed,
            model=args.model,
            device=args.device,
            threads=args.threads,
            force=args.force,
        )
        return 0
    job, params = _job(args)
    evaluate_stage(job, params, device=args.device, threads=args.threads, force=args.force)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .runs import evaluate_stage, train_stage

    job, params = _job(args)
    train_stage(job, params, device=args.device, threads=args.threads, force=args.force)
    log.set_context("evaluate", f"{args.dataset}/{args.model}/seed-{args.seed}")
    evaluate_stage(job, params, device=args.device, threads=args.threads, force=args.force)
    return 0


def cmd_noise(args: argparse.Namespace) -> int:
    from .studies import noise_stage

    job, params = _job(args)
    noise_stage(job, params, device=args.device, threads=args.threads, force=args.force)
    return 0


def cmd_tsne(args: argparse.Namespace) -> int:
    from .studies import tsne_stage

    job, params = _job(args)
    tsne_stage(job, params, device=args.device, threads=args.threads, force=args.force)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .studies import sweep_stage

    params = config.load_params(args.params)
    if args.profile:
        params["profile"] = args.profile
        config.validate_params(params)
    model = f"{args.model}/" if args.model else ""
    log.set_context("sweep", f"{args.dataset}/{model}{args.point}/seed-{args.seed}")
    sweep_stage(
        params,
        args.dataset,
        args.point,
        args.seed,
        model=args.model,
        device=args.device,
        threads=args.threads,
        force=args.force,
    )
    return 0


def _runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="override params.yaml's profile")
    p.add_argument("--device", default=None, help="override train.device (auto, cpu, cuda, cuda:N)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--force", action="store_true", help="recompute even when up to date")


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    for name, fn, helptext in (
        ("train", cmd_train, "train one (dataset, model, seed) run, early-stopped on validation"),
        ("evaluate", cmd_evaluate, "evaluate a trained run on the test split"),
        ("run", cmd_run, "train, then evaluate"),
        (
            "noise",
            cmd_noise,
            "Figure 2: test metrics of a trained run under corrupted input vectors",
        ),
        (
            "tsne",
            cmd_tsne,
            "Figures 3-4: t-SNE and clustering of a trained run's posteriors [mu, sigma]",
        ),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("dataset")
        p.add_argument("model")
        p.add_argument("seed", type=int)
        if name == "evaluate":
            p.add_argument(
                "--point",
                default=None,
                help="a readings point (reading-<scaling>[+input], tune-<name>): its own run",
            )
        _runtime_options(p)
        p.set_defaults(fn=fn)
    p = sub.add_parser(
        "sweep",
        help="train one point of a sweep: Figures 5-6, or a reading of DAVE's open points",
    )
    p.add_argument("dataset")
    p.add_argument(
        "point",
        help="<param>-<value> (e.g. embedding_dim-16) or default (Figures 5-6); "
        "reading-<scaling>[+input] (the readings study, with --model)",
    )
    p.add_argument("seed", type=int)
    p.add_argument("--model", default=None, help="the model of a reading (default: sweeps.model)")
    _runtime_options(p)
    p.set_defaults(fn=cmd_sweep)


def cmd_report_metrics(args: argparse.Namespace) -> int:
    from .report_stages import metrics_stage

    params = config.load_params(args.params)
    log.set_context("report metrics", args.dataset)
    metrics_stage(params, args.dataset, args.profile, force=args.force)
    return 0


def cmd_report_tables(args: argparse.Namespace) -> int:
    from .report_stages import tables_stage

    params = config.load_params(args.params)
    if args.datasets:
        params["datasets"] = args.datasets
        config.validate_params(params)
    log.set_context("report tables")
    for path in tables_stage(params, args.profile, force=args.force):
        logging.getLogger(__name__).info("wrote %s", path)
    return 0


def _with_overrides(args: argparse.Namespace) -> dict[str, Any]:
    params = config.load_params(args.params)
    if getattr(args, "profile", None):
        params["profile"] = args.profile
    if getattr(args, "datasets", None):
        params["datasets"] = args.datasets
    config.validate_params(params)
    return params


def cmd_report_study(args: argparse.Namespace) -> int:
    from .reports.studies import write_summary

    params = _with_overrides(args)
    log.set_context(f"report {args.report_command}", args.dataset)
    for path in write_summary(args.report_command, params, args.dataset):
        logging.getLogger(__name__).info("wrote %s", path)
    return 0


def cmd_report_figures(args: argparse.Namespace) -> int:
    from .reports.figures import write_figures

    params = _with_overrides(args)
    log.set_context("report figures")
    for path in write_figures(params):
        logging.getLogger(__name__).info("wrote %s", path)
    return 0


def cmd_report_write(args: argparse.Namespace) -> int:
    from .reports.report import write_report

    params = _with_overrides(args)
    log.set_context("report")
    logging.getLogger(__name__).info("wrote %s", write_report(params))
    return 0


def add_report_commands(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="tables, figures and the report")
    rsub = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    p = rsub.add_parser("metrics", help="all runs of one dataset in results/metrics/<dataset>.json")
    p.add_argument("dataset")
    p.add_argument("--profile", default=None)
    p.add_argument("--force", action="store_true", help="recompute even when up to date")
    p.set_defaults(fn=cmd_report_metrics)
    p = rsub.add_parser("tables", help="Table 2, the summary and Tables 4-8 in results/tables/")
    p.add_argument("--profile", default=None)
    p.add_argument("--datasets", nargs="*", default=None)
    p.add_argument("--force", action="store_true", help="recompute even when up to date")
    p.set_defaults(fn=cmd_report_tables)
    for kind, helptext in (
        ("noise", "Figure 2's numbers: results/noise/<dataset>.csv and .json"),
        ("tsne", "Figures 3-4's silhouettes: results/tsne/<dataset>.csv and .json"),
        ("sweeps", "Figures 5-6's numbers: results/sweeps/<dataset>.csv and .json"),
        (
            "readings",
            "the readings study, selected on validation: results/readings/<dataset>.csv and .json",
        ),
    ):
        p = rsub.add_parser(kind, help=helptext)
        p.add_argument("dataset")
        p.add_argument("--profile", default=None)
        p.set_defaults(fn=cmd_report_study)
    for name, fn, helptext in (
        ("figures", cmd_report_figures, "Figures 2-6 in results/figures/"),
        ("write", cmd_report_write, "results/report.md (tables, figures, claims)"),
    ):
        p = rsub.add_parser(name, help=helptext)
        p.add_argument("--profile", default=None)
        p.add_argument("--datasets", nargs="*", default=None)
        p.set_defaults(fn=fn)


def cmd_audit(args: argparse.Namespace) -> int:
    from .audit import audit

    return audit(
        args.commit,
        rerun=args.rerun,
        repo=args.repo,
        json_out=args.json,
        device=args.device,
        keep_scratch=args.keep_scratch,
    )


def add_audit_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="where each result of a commit came from, verified; --rerun to re-execute a stage",
    )
    p.add_argument("commit", help="a commit (hash, branch, tag, HEAD~1, ...)")
    p.add_argument(
        "--rerun",
        metavar="STAGE[@SELECTOR]",
        default=None,
        help="re-execute stage runs of that commit in a scratch workspace and compare: "
        "download|preprocess|split[@DATASET], train|evaluate[@DATASET[/MODEL[/SEED]]], "
        "report[@DATASET|@tables]",
    )
    p.add_argument("--repo", default=".", help="the repository (default: the current directory)")
    p.add_argument(
        "--json", default=None, metavar="PATH", help="also write the full report as JSON"
    )
    p.add_argument(
        "--device", default="cpu", help="device for re-executed model stages (default cpu)"
    )
    p.add_argument(
        "--keep-scratch", action="store_true", help="keep the scratch workspace of --rerun"
    )
    p.set_defaults(fn=cmd_audit)
