# Tables (and, later, figures and the report) over every selected dataset.


rule tables:
    input:
        expand("data/processed/{dataset}/stats.json", dataset=DATASETS),
        expand("results/metrics/{dataset}.json", dataset=DATASETS),
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
        "dave report tables --profile {params.profile} --datasets {params.datasets} 2> {log}"
