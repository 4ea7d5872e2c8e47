# Figures: one rule per figure, built only from HDF5 files. Each rule lists its plotting
# module as an input, so editing one figure's code reruns that figure alone.


rule figure_convergence:
    """F1: training loss vs step per width, mean-function residual and noise floor."""
    input:
        runs=convergence_inputs,
        code=workflow_file("src/ntkvae/figures/convergence.py"),
    output:
        pdf=report(
            "results/figures/f1_convergence_{dataset}.pdf",
            caption="../docs/captions/f1_convergence.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F1 convergence", "dataset": "{dataset}"},
        ),
        png="results/figures/f1_convergence_{dataset}.png",
    log:
        "results/logs/figures/f1_convergence_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot convergence --inputs {input.runs} --dataset {wildcards.dataset} "
        "--pdf {output.pdf} --png {output.png} --dpi {params.dpi} > {log} 2>&1"
