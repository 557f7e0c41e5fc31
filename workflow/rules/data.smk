# Data stages: download → preprocess → split, per dataset (see src/dave_repro/data).

wildcard_constraints:
    dataset="|".join(config_module.DATASETS),  # the datasets the package declares

DATA_MANIFEST = {
    "download": "data/raw/{dataset}/manifest.json",
    "preprocess": "data/processed/{dataset}/preprocess.manifest.json",
    "split": "data/processed/{dataset}/split.manifest.json",
}


def data_key(stage):
    return lambda w: engine.data_key(P, stage, w.dataset)


def data_key_file(stage):
    return lambda w: engine.key_file(stage, engine.data_key(P, stage, w.dataset), w.dataset,
                                     manifest=DATA_MANIFEST[stage].format(dataset=w.dataset))


rule download:
    input:
        data_key_file("download"),
    output:
        update(DATA_MANIFEST["download"]),
    params:
        key=data_key("download"),
    log:
        "logs/download/{dataset}.log",
    resources:
        mem_mb=1000,
        runtime=30,
    shell:
        KEYED + "dave download {wildcards.dataset}" + TO_LOG


rule preprocess:
    input:
        data_key_file("preprocess"),
        consumes(DATA_MANIFEST["download"]),
    output:
        update("data/processed/{dataset}/interactions.parquet"),
        update("data/processed/{dataset}/user_map.parquet"),
        update("data/processed/{dataset}/item_map.parquet"),
        update("data/processed/{dataset}/stats.json"),
        update(DATA_MANIFEST["preprocess"]),
    params:
        key=data_key("preprocess"),
    log:
        "logs/preprocess/{dataset}.log",
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        KEYED + "dave preprocess {wildcards.dataset}" + TO_LOG


rule split:
    input:
        data_key_file("split"),
        consumes("data/processed/{dataset}/interactions.parquet",
                 "data/processed/{dataset}/stats.json"),
    output:
        update("data/processed/{dataset}/train.parquet"),
        update("data/processed/{dataset}/valid.parquet"),
        update("data/processed/{dataset}/test.parquet"),
        update("data/processed/{dataset}/negatives_valid.parquet"),
        update("data/processed/{dataset}/negatives_test.parquet"),
        update("data/processed/{dataset}/train_csr.npz"),
        update("data/processed/{dataset}/split.json"),
        update(DATA_MANIFEST["split"]),
    params:
        key=data_key("split"),
    log:
        "logs/split/{dataset}.log",
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        KEYED + "dave split {wildcards.dataset}" + TO_LOG
