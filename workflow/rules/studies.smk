# The studies of Section 4.2 beyond Tables 4-8 (see src/dave_repro/studies.py for which jobs
# exist): noise (Figure 2), t-SNE (Figures 3-4) and hyper-parameter sweeps (Figures 5-6). Each job
# reads a trained run; each dataset's summary exists (empty) even where a study does not apply.

wildcard_constraints:
    point=r"default|[a-z_]+-[0-9]+|reading-[a-z0-9][a-z0-9.-]*(\+input)?",


STUDY = "results/{stage}/{dataset}/{model}-seed-{seed}"


def study_key(stage):
    return lambda w: engine.study_key(P, stage, w.dataset, w.model, w.seed)


def study_key_file(stage):
    def key_file(w):
        job = STUDY.format(stage=stage, dataset=w.dataset, model=w.model, seed=w.seed)
        return engine.key_file(stage, study_key(stage)(w), w.dataset, w.model, f"seed-{w.seed}",
                               manifest=job + ".manifest.json")

    return key_file


def summary_key_file(study):
    return lambda w: engine.key_file("report", None, study, w.dataset,
                                     manifest=f"results/{study}/{w.dataset}.manifest.json")


rule noise:
    input:
        study_key_file("noise"),
        consumes(RUN + "model.pt", RUN + "train.json", SPLIT + "train_csr.npz",
                 SPLIT + "test.parquet", SPLIT + "negatives_test.parquet"),
    output:
        update("results/noise/{dataset}/{model}-seed-{seed}.csv"),
        update("results/noise/{dataset}/{model}-seed-{seed}.manifest.json"),
    params:
        profile=PROFILE,
        key=study_key("noise"),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        "logs/noise/{dataset}/{model}/seed-{seed}.log",
    shell:
        KEYED + "dave noise {wildcards.dataset} {wildcards.model} {wildcards.seed} "
        "--profile {params.profile:q} --threads {threads}" + TO_LOG


rule tsne:
    input:
        study_key_file("tsne"),
        consumes(RUN + "model.pt", RUN + "train.json", SPLIT + "train_csr.npz"),
    output:
        update("results/tsne/{dataset}/{model}-seed-{seed}.parquet"),
        update("results/tsne/{dataset}/{model}-seed-{seed}.csv"),
        update("results/tsne/{dataset}/{model}-seed-{seed}.manifest.json"),
    params:
        profile=PROFILE,
        key=study_key("tsne"),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/tsne/{dataset}/{model}/seed-{seed}.log",
    shell:
        KEYED + "dave tsne {wildcards.dataset} {wildcards.model} {wildcards.seed} "
        "--profile {params.profile:q} --threads {threads}" + TO_LOG


SWEEP_RUN = "results/sweep-runs/{dataset}/{model}/{point}/seed-{seed}/"


rule sweep_train:
    input:
        lambda w: engine.key_file("train", engine.sweep_key(P, w.dataset, w.point, w.seed, w.model),
                                  "sweeps", w.dataset, w.model, w.point, f"seed-{w.seed}",
                                  manifest=SWEEP_RUN.format(dataset=w.dataset, model=w.model,
                                                            point=w.point, seed=w.seed)
                                  + "train.manifest.json"),
        consumes(SPLIT + "train_csr.npz", SPLIT + "valid.parquet",
                 SPLIT + "negatives_valid.parquet"),
    output:
        update(SWEEP_RUN + "model.pt"),
        update(SWEEP_RUN + "train.json"),
        update(SWEEP_RUN + "train.manifest.json"),
    params:
        profile=PROFILE,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=1,
    log:
        "logs/sweeps/{dataset}/{model}/{point}/seed-{seed}.log",
    shell:
        "dave sweep {wildcards.dataset} {wildcards.point} {wildcards.seed} "
        "--model {wildcards.model} --profile {params.profile:q} --threads {threads}" + TO_LOG


rule point_evaluate:
    """A readings point's test numbers (for the report; the selection reads validation only)."""
    input:
        lambda w: engine.key_file("evaluate",
                                  engine.point_key(P, "evaluate", w.dataset, w.point, w.seed, w.model),
                                  "sweeps", w.dataset, w.model, w.point, f"seed-{w.seed}",
                                  manifest=SWEEP_RUN.format(dataset=w.dataset, model=w.model,
                                                            point=w.point, seed=w.seed)
                                  + "evaluate.manifest.json"),
        consumes(SWEEP_RUN + "model.pt", SWEEP_RUN + "train.json", SPLIT + "train_csr.npz",
                 SPLIT + "test.parquet", SPLIT + "negatives_test.parquet"),
    output:
        update(SWEEP_RUN + "metrics.json"),
        update(SWEEP_RUN + "ranks.parquet"),
        update(SWEEP_RUN + "evaluate.manifest.json"),
    params:
        profile=PROFILE,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    log:
        "logs/sweeps/{dataset}/{model}/{point}/seed-{seed}.evaluate.log",
    shell:
        "dave evaluate {wildcards.dataset} {wildcards.model} {wildcards.seed} "
        "--point {wildcards.point} --profile {params.profile:q} --threads {threads}" + TO_LOG


rule readings_summary:
    input:
        summary_key_file("readings"),
        lambda w: consumes(*plan.readings_targets(P, w.dataset)),
    output:
        update("results/readings/{dataset}.csv"),
        update("results/readings/{dataset}.json"),
        update("results/readings/{dataset}.manifest.json"),
    params:
        profile=PROFILE,
    log:
        "logs/readings/{dataset}.log",
    shell:
        "dave report readings {wildcards.dataset} --profile {params.profile:q}" + TO_LOG


rule noise_summary:
    input:
        summary_key_file("noise"),
        lambda w: consumes(*plan.noise_targets(P, w.dataset)),
    output:
        update("results/noise/{dataset}.csv"),
        update("results/noise/{dataset}.json"),
        update("results/noise/{dataset}.manifest.json"),
    params:
        profile=PROFILE,
    log:
        "logs/noise/{dataset}.log",
    shell:
        "dave report noise {wildcards.dataset} --profile {params.profile:q}" + TO_LOG


rule tsne_summary:
    input:
        summary_key_file("tsne"),
        lambda w: consumes(*plan.tsne_targets(P, w.dataset)),
    output:
        update("results/tsne/{dataset}.csv"),
        update("results/tsne/{dataset}.json"),
        update("results/tsne/{dataset}.manifest.json"),
    params:
        profile=PROFILE,
    log:
        "logs/tsne/{dataset}.log",
    shell:
        "dave report tsne {wildcards.dataset} --profile {params.profile:q}" + TO_LOG


rule sweep_summary:
    input:
        summary_key_file("sweeps"),
        lambda w: consumes(*plan.sweep_targets(P, w.dataset)),
    output:
        update("results/sweeps/{dataset}.csv"),
        update("results/sweeps/{dataset}.json"),
        update("results/sweeps/{dataset}.manifest.json"),
    params:
        profile=PROFILE,
    log:
        "logs/sweeps/{dataset}.log",
    shell:
        "dave report sweeps {wildcards.dataset} --profile {params.profile:q}" + TO_LOG
