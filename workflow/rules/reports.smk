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
    log:
        "logs/tables.log",
    shell:
        "dave report tables --profile {params.profile:q} --datasets {params.datasets:q} 2> {log}"
