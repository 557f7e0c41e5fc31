# Training and evaluation, one job per (dataset, model, seed) of the selected profile.

wildcard_constraints:
    model="[a-z0-9-]+",
    seed=r"[0-9]+",  # ASCII digits: Python's \d also matches other scripts' digits

SPLIT = "data/processed/{dataset}/"
RUN = "results/runs/{dataset}/{model}/seed-{seed}/"


def job_key(stage):
    return lambda w: engine.key_file(stage, engine.job_key(P, stage, w.dataset, w.model, w.seed),
                                     w.dataset, w.model, f"seed-{w.seed}",
                                     manifest=RUN.format(dataset=w.dataset, model=w.model,
                                                         seed=w.seed) + f"{stage}.manifest.json")


rule train:
    input:
        job_key("train"),
        consumes(SPLIT + "train_csr.npz", SPLIT + "valid.parquet",
                 SPLIT + "negatives_valid.parquet"),
    output:
        update(RUN + "model.pt"),
        update(RUN + "train.json"),
        update(RUN + "train.manifest.json"),
    params:
        profile=PROFILE,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=1,
    log:
        "logs/train/{dataset}/{model}/seed-{seed}.log",
    shell:
        "dave train {wildcards.dataset} {wildcards.model} {wildcards.seed} "
        "--profile {params.profile:q} --threads {threads}" + TO_LOG


rule evaluate:
    input:
        job_key("evaluate"),
        consumes(RUN + "model.pt", RUN + "train.json", SPLIT + "train_csr.npz",
                 SPLIT + "test.parquet", SPLIT + "negatives_test.parquet"),
    output:
        update(RUN + "metrics.json"),
        update(RUN + "ranks.parquet"),
        update(RUN + "evaluate.manifest.json"),
    params:
        profile=PROFILE,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    log:
        "logs/evaluate/{dataset}/{model}/seed-{seed}.log",
    shell:
        "dave evaluate {wildcards.dataset} {wildcards.model} {wildcards.seed} "
        "--profile {params.profile:q} --threads {threads}" + TO_LOG


def run_files(dataset):
    """What the per-dataset metrics read: every run's test metrics and training history."""
    return plan.run_targets(P, "metrics.json", dataset) + plan.run_targets(P, "train.json", dataset)


rule dataset_metrics:
    """All runs of one dataset in one small file (what `dvc metrics diff` compares)."""
    input:
        lambda w: engine.key_file("report", None, "metrics", w.dataset,
                                  manifest=f"results/metrics/{w.dataset}.manifest.json"),
        lambda w: consumes(*run_files(w.dataset)),
    output:
        # every run in one file, test HR@10 / NDCG@10 per model, the per-epoch curves table
        *[update(f.as_posix()) for f in plan.metrics_outputs(P, "{dataset}")],
        update("results/metrics/{dataset}.manifest.json"),
    params:
        profile=PROFILE,
        runs=lambda w: len(plan.run_targets(P, "metrics.json", w.dataset)),
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/metrics/{dataset}.log",
    shell:
        "dave report metrics {wildcards.dataset} --profile {params.profile:q}" + TO_LOG
