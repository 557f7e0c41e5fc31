# The studies of Section 4.2 beyond Tables 4-8 (see src/dave_repro/studies.py for which jobs
# exist): noise (Figure 2), t-SNE (Figures 3-4) and hyper-parameter sweeps (Figures 5-6). Each job
# reads a trained run; each dataset's summary exists (empty) even where a study does not apply.

wildcard_constraints:
    point=r"default|[a-z_]+-[0-9]+|reading-[a-z0-9][a-z0-9.-]*(\+input)?",


def study_key(stage):
    return lambda w: engine.key_file(stage, engine.study_key(P, stage, w.dataset, w.model, w.seed),
                                     w.dataset, w.model, f"seed-{w.seed}")


rule noise:
    input:
        study_key("noise"),
        RUN + "model.pt",
        RUN + "train.json",
        SPLIT + "train_csr.npz",
        SPLIT + "test.parquet",
        SPLIT + "negatives_test.parquet",
    output:
        update("results/noise/{dataset}/{model}-seed-{seed}.csv"),
        update("results/noise/{dataset}/{model}-seed-{seed}.manifest.json"),
    params:
        profile=PROFILE,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        "logs/noise/{dataset}/{model}/seed-{seed}.log",
    shell:
        "dave noise {wildcards.dataset} {wildcards.model} {wildcards.seed} "
        "--profile {params.profile:q} --threads {threads} 2> {log}"


rule tsne:
    input:
        study_key("tsne"),
        RUN + "model.pt",
        RUN + "train.json",
        SPLIT + "train_csr.npz",
    output:
        update("results/tsne/{dataset}/{model}-seed-{seed}.parquet"),
        update("results/tsne/{dataset}/{model}-seed-{seed}.csv"),
        update("results/tsne/{dataset}/{model}-seed-{seed}.manifest.json"),
    params:
        profile=PROFILE,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/tsne/{dataset}/{model}/seed-{seed}.log",
    shell:
        "dave tsne {wildcards.dataset} {wildcards.model} {wildcards.seed} "
        "--profile {params.profile:q} --threads {threads} 2> {log}"


SWEEP_RUN = "results/sweep-runs/{dataset}/{model}/{point}/seed-{seed}/"


rule sweep_train:
    input:
        lambda w: engine.key_file("train", engine.sweep_key(P, w.dataset, w.point, w.seed, w.model),
                                  "sweeps", w.dataset, w.model, w.point, f"seed-{w.seed}",
                                  manifest=SWEEP_RUN.format(dataset=w.dataset, model=w.model,
                                                            point=w.point, seed=w.seed)
                                  + "train.manifest.json"),
        SPLIT + "train_csr.npz",
        SPLIT + "valid.parquet",
        SPLIT + "negatives_valid.parquet",
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
        "--model {wildcards.model} --profile {params.profile:q} --threads {threads} 2> {log}"


rule point_evaluate:
    """A readings point's test numbers (for the report; the selection reads validation only)."""
    input:
        lambda w: engine.key_file("evaluate",
                                  engine.point_key(P, "evaluate", w.dataset, w.point, w.seed, w.model),
                                  "sweeps", w.dataset, w.model, w.point, f"seed-{w.seed}",
                                  manifest=SWEEP_RUN.format(dataset=w.dataset, model=w.model,
                                                            point=w.point, seed=w.seed)
                                  + "evaluate.manifest.json"),
        SWEEP_RUN + "model.pt",
        SWEEP_RUN + "train.json",
        SPLIT + "train_csr.npz",
        SPLIT + "test.parquet",
        SPLIT + "negatives_test.parquet",
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
        "--point {wildcards.point} --profile {params.profile:q} --threads {threads} 2> {log}"


rule readings_summary:
    input:
        lambda w: plan.readings_targets(P, w.dataset),
    output:
        "results/readings/{dataset}.csv",
        "results/readings/{dataset}.json",
    params:
        profile=PROFILE,
    log:
        "logs/readings/{dataset}.log",
    shell:
        "dave report readings {wildcards.dataset} --profile {params.profile:q} 2> {log}"


rule noise_summary:
    input:
        lambda w: plan.noise_targets(P, w.dataset),
    output:
        "results/noise/{dataset}.csv",
        "results/noise/{dataset}.json",
    params:
        profile=PROFILE,
    log:
        "logs/noise/{dataset}.log",
    shell:
        "dave report noise {wildcards.dataset} --profile {params.profile:q} 2> {log}"


rule tsne_summary:
    input:
        lambda w: plan.tsne_targets(P, w.dataset),
    output:
        "results/tsne/{dataset}.csv",
        "results/tsne/{dataset}.json",
    params:
        profile=PROFILE,
    log:
        "logs/tsne/{dataset}.log",
    shell:
        "dave report tsne {wildcards.dataset} --profile {params.profile:q} 2> {log}"


rule sweep_summary:
    input:
        lambda w: plan.sweep_targets(P, w.dataset),
    output:
        "results/sweeps/{dataset}.csv",
        "results/sweeps/{dataset}.json",
    params:
        profile=PROFILE,
    log:
        "logs/sweeps/{dataset}.log",
    shell:
        "dave report sweeps {wildcards.dataset} --profile {params.profile:q} 2> {log}"
