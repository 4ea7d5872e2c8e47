# The report's other entries: the claims table (measured vs predicted, tolerance and verdict)
# and the provenance record (resolved config, commit, versions, devices), each also as HTML.


rule claims:
    """The claims table: each claim, measured vs predicted, tolerance and verdict, from HDF5 files."""
    input:
        unpack(claims_inputs),
        code=code("ntkvae.claims"),
    output:
        md=paths.CLAIMS_MD.pattern,
        tsv=report(
            paths.CLAIMS_TSV.pattern,
            caption="../docs/captions/claims.rst",
            category="Claims",
            labels={"table": "claims table as TSV (download)"},
        ),
        # The report's landing page includes it too (report/workflow.rst).
        html=report(
            paths.CLAIMS_HTML.pattern,
            caption="../docs/captions/claims.rst",
            category="Claims",
            labels={"table": "verdict per theorem and claims table"},
        ),
    log:
        paths.CLAIMS_LOG.pattern,
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
        "--md {output.md} --tsv {output.tsv} --html {output.html} > {log} 2>&1"


rule provenance:
    """The resolved config (with the generated sweep runs), git commit, versions and the devices the
    training jobs ran on, as YAML and as readable HTML for the report."""
    input:
        runs=training_files,
        code=code("ntkvae.provenance"),
    output:
        record=paths.PROVENANCE.pattern,
        html=report(
            paths.PROVENANCE_HTML.pattern,
            caption="../docs/captions/provenance.rst",
            category="Provenance",
            labels={"record": "config, commit, versions, devices"},
        ),
    log:
        paths.PROVENANCE_LOG.pattern,
    params:
        config=resolved_config_json,
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/plot.yaml"
    shell:
        "python -m ntkvae.provenance --config {params.config} --inputs {input.runs} --out {output.record} "
        "--html {output.html} > {log} 2>&1"
