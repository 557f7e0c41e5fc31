# Tables, figures and the report over every selected dataset.


rule tables:
    input:
        expand("data/processed/{dataset}/stats.json", dataset=DATASETS),
        expand("results/metrics/{dataset}.json", dataset=DATASETS),
        plan.run_targets(P, "ranks.parquet"),  # per-user paired tests in Tables 4-8
    output:
        directory("results/tables"),
    params:
        profile=PROFILE,
        datasets=DATASETS,
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/tables.log",
    shell:
        "dave report tables --profile {params.profile:q} --datasets {params.datasets:q} 2> {log}"


rule figures:
    input:
        expand("results/{study}/{dataset}.csv", study=["noise", "tsne", "sweeps", "readings"], dataset=DATASETS),
    output:
        directory("results/figures"),
    params:
        profile=PROFILE,
        datasets=DATASETS,
    log:
        "logs/figures.log",
    shell:
        "dave report figures --profile {params.profile:q} --datasets {params.datasets:q} 2> {log}"


rule report:
    input:
        "results/tables",
        "results/figures",
        expand("results/{study}/{dataset}.csv", study=["noise", "tsne", "sweeps", "readings"], dataset=DATASETS),
    output:
        "results/report.md",
    params:
        profile=PROFILE,
        datasets=DATASETS,
    log:
        "logs/report.log",
    shell:
        "dave report write --profile {params.profile:q} --datasets {params.datasets:q} 2> {log}"
