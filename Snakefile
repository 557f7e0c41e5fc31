# dave-repro: the fine-grained job grid (dataset × model × seed). Every rule calls the `dave` CLI;
# all logic lives in src/dave_repro. Parameters come from params.yaml (only `profile` and
# `datasets` may be overridden with --config). Caching is by content: each `dave` stage skips
# itself when its inputs, parameters and code hash to what its manifest records. The only file
# times Snakemake compares are those the engine sets from content (src/dave_repro/engine.py):
# rules read data files through `consumes` (ancient, plus their producers' manifests).
from dave_repro import engine, plan
from dave_repro import config as config_module  # `config` is Snakemake's own

configfile: "params.yaml"

P = engine.load(config)
PROFILE = P["profile"]
DATASETS = P["datasets"]
# A job's output (errors, progress) goes to the console, on stderr, and to its log in logs/.
TO_LOG = " 2>&1 | tee {log} >&2"
# A stage that does not compute the engine's key itself records the one its rule passes.
KEYED = "DAVE_JOB_KEY={params.key:q} "


def consumes(*files):
    """Data inputs by content: ancient (DVC and git write them at any time), and the manifests of
    the jobs that write them, whose times the engine sets (a job that re-runs re-runs these)."""
    manifests = engine.manifests_for(files)
    return [*ancient([f for f in files if f not in manifests]), *manifests]


include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/reports.smk"


rule all:
    input:
        "results/tables",
        "results/figures",
        "results/report.md",
