# dave-repro: the fine-grained job grid (dataset × model × seed). Every rule calls the `dave` CLI;
# all logic lives in src/dave_repro. Parameters come from params.yaml (only `profile` and
# `datasets` may be overridden with --config). Caching is by content: each `dave` stage skips
# itself when its inputs, parameters and code hash to what its manifest records.
from dave_repro import engine, plan
from dave_repro import config as config_module  # `config` is Snakemake's own

configfile: "params.yaml"

P = engine.load(config)
PROFILE = P["profile"]
DATASETS = P["datasets"]


include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/reports.smk"


rule all:
    input:
        "results/tables",
        "results/figures",
        "results/report.md",
