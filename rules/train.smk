# Training: one job per (dataset, run, width) trains every seed of that width together
# (vmapped, one jitted step) and writes results/train/<dataset>/<run>/w<width>.h5.


rule train:
    """Train all seeds of one width; checkpoints allow resuming after preemption."""
    input:
        data=paths.DATA.pattern,
        code=code("ntkvae.train"),
    output:
        run=paths.TRAIN.pattern,
    log:
        paths.TRAIN_LOG.pattern,
    benchmark:
        paths.TRAIN_BENCHMARK.pattern
    params:
        model=train_model_json,
        training=train_settings_json,
        checkpoint=paths.CHECKPOINT.pattern,
        probe=probe_json,
    threads: 2
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=jax_gpus,
    conda:
        JAX_ENV
    shell:
        "python -m ntkvae.train --data {input.data} --width {wildcards.width} --run {wildcards.run} "
        "--model {params.model} --training {params.training} "
        "--checkpoint {params.checkpoint} --probe {params.probe} --out {output.run} > {log} 2>&1"
