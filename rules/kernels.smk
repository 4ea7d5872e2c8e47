# Infinite-width kernels: one job per (dataset, activation) writes Theta_inf per group, the mean
# kernel's spectrum and lambda0 per set of trained groups (results/kernels/<dataset>/<activation>.h5); one job per
# (dataset, run) turns it into the linearized loss-curve prediction of that run
# (results/kernels/<dataset>/<run>/prediction.h5). Kernels do not depend on the width or on
# beta: every width and every beta reuses the same file. Layouts: docs/theory.md, "Data layout".
# Helper functions (kernels_json, run_kernel_file, ...) are in common.smk (snakemake --lint);
# planning.kernel_targets lists every kernel and prediction file of a config.
rule kernel:
    """Theta_inf per group (float64), the mean kernel's eigendecomposition, lambda0 per trained set."""
    input:
        data=paths.DATA.pattern,
        code=code("ntkvae.compute_kernels"),
    output:
        kernel=paths.KERNEL.pattern,
    log:
        paths.KERNEL_LOG.pattern,
    benchmark:
        paths.KERNEL_BENCHMARK.pattern
    wildcard_constraints:
        activation="|".join(planning.KERNEL_ACTIVATIONS),
    params:
        model=kernel_model_json,
        kernels=kernels_json,
    threads: planned("kernel", "threads")
    resources:
        mem_mb=planned("kernel", "mem_mb"),
        runtime=planned("kernel", "runtime"),
    conda:
        "../envs/jax-cpu.yaml"
    shell:
        "python -m ntkvae.compute_kernels kernel --data {input.data} --model {params.model} "
        "--kernels {params.kernels} --out {output.kernel} > {log} 2>&1"


rule predict:
    """Linearized loss curves of one run (fresh and fixed noise) and the Theorem-1 bound."""
    input:
        data=paths.DATA.pattern,
        kernel=run_kernel_file,
        code=code("ntkvae.predict"),
    output:
        prediction=paths.PREDICTION.pattern,
    log:
        paths.PREDICTION_LOG.pattern,
    benchmark:
        paths.PREDICTION_BENCHMARK.pattern
    params:
        training=run_settings_json,
    threads: 1
    resources:
        mem_mb=planned("predict", "mem_mb"),
        runtime=planned("predict", "runtime"),
    conda:
        "../envs/plot.yaml"   # numpy, h5py, jsonschema: no JAX
    shell:
        "python -m ntkvae.predict --data {input.data} --kernel {input.kernel} "
        "--training {params.training} --run {wildcards.run} --out {output.prediction} > {log} 2>&1"
