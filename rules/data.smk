# Data: each dataset subset, normalized, into results/data/<dataset>.h5 (common layout,
# see src/ntkvae/datasets.py). The offline datasets are generated here; the paper's
# tensorflow-datasets sources write the same layout.


rule prepare_offline_data:
    """Seeded subset of an offline dataset (scikit-learn digits or procedural sprites)."""
    output:
        data="results/data/{dataset}.h5",
    log:
        "results/logs/data/{dataset}.log",
    params:
        n=dataset_n,
        seed=dataset_seed,
        center=dataset_center_flag,
    wildcard_constraints:
        dataset="|".join(OFFLINE_DATASETS),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/jax-cpu.yaml"
    shell:
        "python -m ntkvae.prepare_data --dataset {wildcards.dataset} --n {params.n} "
        "--seed {params.seed} {params.center} --out {output.data} > {log} 2>&1"
