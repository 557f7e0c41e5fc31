# Tables, figures and the report over every selected dataset.

SUMMARIES = expand("results/{study}/{dataset}.csv", study=["noise", "tsne", "sweeps", "readings"],
                   dataset=DATASETS)


def report_key_file(name, manifest, *dated):
    return engine.key_file("report", None, name, manifest=manifest, dated=dated)


rule tables:
    input:
        report_key_file("tables", "results/tables/manifest.json", "results/tables"),
        consumes(*expand("data/processed/{dataset}/stats.json", dataset=DATASETS),
                 *expand("results/metrics/{dataset}.json", dataset=DATASETS),
                 *plan.run_targets(P, "ranks.parquet"),  # per-user paired tests in Tables 4-8
                 *expand("results/readings/{dataset}.csv", dataset=DATASETS)),  # reading rows
    output:
        update(directory("results/tables")),
    params:
        profile=PROFILE,
        datasets=DATASETS,
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/tables.log",
    shell:
        "dave report tables --profile {params.profile:q} --datasets {params.datasets:q}" + TO_LOG


rule figures:
    input:
        report_key_file("figures", "results/figures/manifest.json", "results/figures"),
        consumes(*SUMMARIES),
    output:
        update(directory("results/figures")),
    params:
        profile=PROFILE,
        datasets=DATASETS,
    log:
        "logs/figures.log",
    shell:
        "dave report figures --profile {params.profile:q} --datasets {params.datasets:q}" + TO_LOG


rule report:
    input:
        report_key_file("report", "results/report.manifest.json"),
        "results/tables",  # their times are the engine's (report_key_file dates them)
        "results/figures",
        consumes(*SUMMARIES),
    output:
        update("results/report.md"),
        update("results/report.manifest.json"),
    params:
        profile=PROFILE,
        datasets=DATASETS,
    log:
        "logs/report.log",
    shell:
        "dave report write --profile {params.profile:q} --datasets {params.datasets:q}" + TO_LOG
