# Figures: one rule per figure, built only from HDF5 files. Each rule lists its plotting
# module as an input, so editing one figure's code reruns that figure alone (the shared
# modules style/runs/measures/images are deliberately not inputs: a change of the common
# look is rerun with --forcerun or -R).


rule figure_convergence:
    """F1: training loss vs step per width, mean-function residual and noise floor."""
    # Cheap: on a cluster it runs on the login node instead of waiting in the queue.
    localrule: True
    input:
        runs=convergence_inputs,
        kernels=convergence_kernel_inputs,
        data="results/data/{dataset}.h5",
        code=plot_code("convergence"),
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
        theory=convergence_kernel_args,
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot convergence --inputs {input.runs} {params.theory} --dataset {wildcards.dataset} "
        "--pdf {output.pdf} --png {output.png} --dpi {params.dpi} > {log} 2>&1"


rule figure_laziness:
    """F2: relative weight change per group vs step and vs width, with fitted and predicted slopes."""
    input:
        runs=laziness_inputs,
        code=plot_code("laziness"),
    output:
        pdf=report(
            "results/figures/f2_laziness_{dataset}.pdf",
            caption="../docs/captions/f2_laziness.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F2 laziness", "dataset": "{dataset}"},
        ),
        png="results/figures/f2_laziness_{dataset}.png",
    log:
        "results/logs/figures/f2_laziness_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot laziness --inputs {input.runs} --dataset {wildcards.dataset} "
        "--pdf {output.pdf} --png {output.png} --dpi {params.dpi} > {log} 2>&1"


rule figure_kl_beta:
    """F6: reconstruction error, KL and latent statistics vs the KL weight beta."""
    input:
        runs=kl_beta_inputs,
        code=plot_code("kl_beta"),
    output:
        pdf=report(
            "results/figures/f6_kl_beta_{dataset}.pdf",
            caption="../docs/captions/f6_kl_beta.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F6 KL regularization", "dataset": "{dataset}"},
        ),
        png="results/figures/f6_kl_beta_{dataset}.png",
    log:
        "results/logs/figures/f6_kl_beta_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot kl_beta --inputs {input.runs} --dataset {wildcards.dataset} "
        "--pdf {output.pdf} --png {output.png} --dpi {params.dpi} > {log} 2>&1"


rule figure_narrow_wide:
    """F7: a narrow (standard) VAE against the widest over-parameterized one."""
    input:
        runs=narrow_wide_inputs,
        data="results/data/{dataset}.h5",
        code=plot_code("narrow_wide"),
    output:
        pdf=report(
            "results/figures/f7_narrow_wide_{dataset}.pdf",
            caption="../docs/captions/f7_narrow_wide.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F7 narrow vs wide", "dataset": "{dataset}"},
        ),
        png="results/figures/f7_narrow_wide_{dataset}.png",
    log:
        "results/logs/figures/f7_narrow_wide_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot narrow_wide --inputs {input.runs} --data {input.data} "
        "--dataset {wildcards.dataset} --pdf {output.pdf} --png {output.png} --dpi {params.dpi} > {log} 2>&1"


rule figure_generation:
    """F8: reconstructions, prior samples and latent traversals per width."""
    input:
        runs=generation_inputs,
        data="results/data/{dataset}.h5",
        code=plot_code("generation"),
    output:
        pdf=report(
            "results/figures/f8_generation_{dataset}.pdf",
            caption="../docs/captions/f8_generation.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F8 image generation", "dataset": "{dataset}"},
        ),
        png="results/figures/f8_generation_{dataset}.png",
    log:
        "results/logs/figures/f8_generation_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot generation --inputs {input.runs} --data {input.data} "
        "--dataset {wildcards.dataset} --pdf {output.pdf} --png {output.png} --dpi {params.dpi} > {log} 2>&1"


rule figure_activations:
    """F10: convergence of the reconstruction loss per activation."""
    input:
        runs=activation_inputs,
        code=plot_code("activations"),
    output:
        pdf=report(
            "results/figures/f10_activations_{dataset}.pdf",
            caption="../docs/captions/f10_activations.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F10 activations", "dataset": "{dataset}"},
        ),
        png="results/figures/f10_activations_{dataset}.png",
    log:
        "results/logs/figures/f10_activations_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot activations --inputs {input.runs} --dataset {wildcards.dataset} "
        "--pdf {output.pdf} --png {output.png} --dpi {params.dpi} > {log} 2>&1"


rule claims:
    """The claims table: each claim, measured vs predicted, tolerance and verdict, from HDF5 files."""
    input:
        runs=claims_inputs,
        kernels=claims_kernel_inputs,
        data=claims_data_inputs,
        code=claims_code(),
    output:
        md="results/claims.md",
        tsv=report(
            "results/claims.tsv",
            caption="../docs/captions/claims.rst",
            category="Claims",
            labels={"table": "claims"},
        ),
    log:
        "results/logs/claims.log",
    params:
        settings=claims_settings_json,
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.claims --inputs {input.runs} --kernels {input.kernels} --data {input.data} "
        "--settings {params.settings} "
        "--md {output.md} --tsv {output.tsv} > {log} 2>&1"


rule figure_kernel_constancy:
    """F3: empirical NTK change in training and distance to Theta_inf, vs width."""
    input:
        runs=kernel_run_inputs,
        kernels=kernel_inputs,
        data="results/data/{dataset}.h5",
        code=plot_code("kernel_constancy"),
    output:
        pdf=report(
            "results/figures/f3_kernel_constancy_{dataset}.pdf",
            caption="../docs/captions/f3_kernel_constancy.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F3 kernel constancy", "dataset": "{dataset}"},
        ),
        png="results/figures/f3_kernel_constancy_{dataset}.png",
    log:
        "results/logs/figures/f3_kernel_constancy_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
        settings=figure_settings_json,
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot kernel_constancy --inputs {input.runs} --kernels {input.kernels} --data {input.data} "
        "--settings {params.settings} --dataset {wildcards.dataset} --pdf {output.pdf} --png {output.png} "
        "--dpi {params.dpi} > {log} 2>&1"


rule figure_rate:
    """F4: lambda_min(Theta_m) vs width and measured vs linearized convergence."""
    input:
        runs=kernel_run_inputs,
        kernels=kernel_inputs,
        data="results/data/{dataset}.h5",
        code=plot_code("rate"),
    output:
        pdf=report(
            "results/figures/f4_rate_{dataset}.pdf",
            caption="../docs/captions/f4_rate.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F4 rate vs lambda0", "dataset": "{dataset}"},
        ),
        png="results/figures/f4_rate_{dataset}.png",
    log:
        "results/logs/figures/f4_rate_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
        settings=figure_settings_json,
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot rate --inputs {input.runs} --kernels {input.kernels} --data {input.data} "
        "--settings {params.settings} --dataset {wildcards.dataset} --pdf {output.pdf} --png {output.png} "
        "--dpi {params.dpi} > {log} 2>&1"


rule figure_krr:
    """F5: trained VAE vs the kernel predictor, per beta and with Wsigma trained."""
    input:
        runs=krr_inputs,
        kernels=krr_kernel_inputs,
        data="results/data/{dataset}.h5",
        code=plot_code("krr"),
    output:
        pdf=report(
            "results/figures/f5_krr_{dataset}.pdf",
            caption="../docs/captions/f5_krr.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F5 KRR connection", "dataset": "{dataset}"},
        ),
        png="results/figures/f5_krr_{dataset}.png",
    log:
        "results/logs/figures/f5_krr_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
        settings=figure_settings_json,
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot krr --inputs {input.runs} --kernels {input.kernels} --data {input.data} "
        "--settings {params.settings} --dataset {wildcards.dataset} --pdf {output.pdf} --png {output.png} "
        "--dpi {params.dpi} > {log} 2>&1"


rule figure_min_width:
    """F9: distance to the linearized trajectory vs width, and the minimum width."""
    input:
        runs=kernel_run_inputs,
        kernels=kernel_inputs,
        data="results/data/{dataset}.h5",
        code=plot_code("min_width"),
    output:
        pdf=report(
            "results/figures/f9_min_width_{dataset}.pdf",
            caption="../docs/captions/f9_min_width.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"figure": "F9 minimum width", "dataset": "{dataset}"},
        ),
        png="results/figures/f9_min_width_{dataset}.png",
    log:
        "results/logs/figures/f9_min_width_{dataset}.log",
    params:
        dpi=config["figures"]["dpi"],
        settings=figure_settings_json,
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.plot min_width --inputs {input.runs} --kernels {input.kernels} --data {input.data} "
        "--settings {params.settings} --dataset {wildcards.dataset} --pdf {output.pdf} --png {output.png} "
        "--dpi {params.dpi} > {log} 2>&1"


rule provenance:
    """The resolved config (with the generated sweep runs), git commit and versions, for the report."""
    input:
        code=provenance_code(),
    output:
        record=report(
            "results/provenance.yaml",
            caption="../docs/captions/provenance.rst",
            category="Provenance",
            labels={"record": "config, commit, versions"},
        ),
    log:
        "results/logs/provenance.log",
    params:
        config=resolved_config_json,
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.provenance --config {params.config} --out {output.record} > {log} 2>&1"
