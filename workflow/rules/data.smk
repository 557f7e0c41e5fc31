# Data stages: download → preprocess → split, per dataset (see src/dave_repro/data).

wildcard_constraints:
    dataset="|".join(config_module.DATASETS),  # the datasets the package declares


def data_key(stage):
    return lambda w: engine.key_file(stage, engine.data_key(P, stage, w.dataset), w.dataset)


rule download:
    input:
        data_key("download"),
    output:
        update("data/raw/{dataset}/manifest.json"),
    log:
        "logs/download/{dataset}.log",
    resources:
        mem_mb=1000,
        runtime=30,
    shell:
        "dave download {wildcards.dataset} 2> {log}"


rule preprocess:
    input:
        data_key("preprocess"),
        "data/raw/{dataset}/manifest.json",
    output:
        update("data/processed/{dataset}/interactions.parquet"),
        update("data/processed/{dataset}/user_map.parquet"),
        update("data/processed/{dataset}/item_map.parquet"),
        update("data/processed/{dataset}/stats.json"),
        update("data/processed/{dataset}/preprocess.manifest.json"),
    log:
        "logs/preprocess/{dataset}.log",
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "dave preprocess {wildcards.dataset} 2> {log}"


rule split:
    input:
        data_key("split"),
        "data/processed/{dataset}/interactions.parquet",
        "data/processed/{dataset}/stats.json",
    output:
        update("data/processed/{dataset}/train.parquet"),
        update("data/processed/{dataset}/valid.parquet"),
        update("data/processed/{dataset}/test.parquet"),
        update("data/processed/{dataset}/negatives_valid.parquet"),
        update("data/processed/{dataset}/negatives_test.parquet"),
        update("data/processed/{dataset}/train_csr.npz"),
        update("data/processed/{dataset}/split.json"),
        update("data/processed/{dataset}/split.manifest.json"),
    log:
        "logs/split/{dataset}.log",
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "dave split {wildcards.dataset} 2> {log}"
