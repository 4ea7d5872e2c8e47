# Training: one job per (dataset, run, width) trains every seed of that width together
# (vmapped, one jitted step) and writes results/train/<dataset>/<run>/w<width>.h5. A job whose
# memory exceeds its device (ntkvae.plan: the GPU's memory, or compute.memory_limit_mb) is split
# by seed: train_part jobs train groups of seeds, and the train job joins their files.


rule train:
    """Train all seeds of one width (or join the parts of a job split by seed); checkpoints allow
    resuming after preemption."""
    input:
        data=paths.DATA.pattern,
        parts=train_part_files,
        code=code("ntkvae.train"),
    output:
        run=paths.TRAIN.pattern,
    log:
        paths.TRAIN_LOG.pattern,
    benchmark:
        paths.TRAIN_BENCHMARK.pattern
    params:
        command=train_command,
    threads: planned("train", "threads")
    resources:
        mem_mb=planned("train", "mem_mb"),
        runtime=planned("train", "runtime"),
        gpu=planned("train", "gpu"),
    conda:
        JAX_ENV
    shell:
        "{params.command} > {log} 2>&1"


rule train_part:
    """Train some of the seeds of one width, for a job too large for its device (ntkvae.plan)."""
    input:
        data=paths.DATA.pattern,
        code=code("ntkvae.train"),
    output:
        part=paths.TRAIN_PART.pattern,
    log:
        paths.TRAIN_PART_LOG.pattern,
    benchmark:
        paths.TRAIN_PART_BENCHMARK.pattern
    wildcard_constraints:
        seeds=paths.WILDCARDS["seeds"],
    params:
        seeds=part_seeds,
        model=train_model_json,
        training=train_settings_json,
        checkpoint=paths.TRAIN_PART_CHECKPOINT.pattern,
        probe=probe_json,
        cache=compilation_cache_option(),
    threads: planned("train_part", "threads")
    resources:
        mem_mb=planned("train_part", "mem_mb"),
        runtime=planned("train_part", "runtime"),
        gpu=planned("train_part", "gpu"),
    conda:
        JAX_ENV
    shell:
        "python -m ntkvae.train --seeds {params.seeds} --data {input.data} --width {wildcards.width} "
        "--run {wildcards.run} --model {params.model} --training {params.training} "
        "--checkpoint {params.checkpoint} --probe {params.probe}{params.cache} --out {output.part} > {log} 2>&1"


# Batched training (compute.batch_runs): the runs that differ only in per-lane numbers train in
# one job per width, every seed of every run a lane of one jitted step (planning.training_batches);
# each run's file is the one rule train would write. One rule per dataset and group of runs (as
# many runs as fit the device: ntkvae.plan.batch_groups), preferred over rule train for its files.
for batch in plan.training_batches(config):

    rule:
        name:
            batch.rule
        input:
            data=paths.DATA.pattern,
            code=code("ntkvae.train"),
        output:
            [paths.TRAIN.pattern.replace("{run}", run) for run in batch.runs],
        log:
            batch_pattern(paths.TRAIN_BATCH_LOG, batch),
        benchmark:
            batch_pattern(paths.TRAIN_BATCH_BENCHMARK, batch)
        wildcard_constraints:
            dataset=batch.dataset,
            width="|".join(str(w) for w in batch.widths),
        params:
            command=batch_command(batch),
        threads: planned("train", "threads", run=batch.runs[0])
        resources:
            mem_mb=planned("train", "mem_mb", run=batch.runs[0]),
            runtime=planned("train", "runtime", run=batch.runs[0]),
            gpu=planned("train", "gpu", run=batch.runs[0]),
        conda:
            JAX_ENV
        shell:
            "{params.command} > {log} 2>&1"

    workflow.ruleorder(batch.rule, "train")
