# Figures: one rule per row of planning.FIGURES (src/ntkvae/planning.py), named
# figure_f<k>_<topic>, writing results/figures/f<k>_<topic>_<dataset>.pdf and .png from HDF5
# files only. Each rule lists as inputs the package modules its plot imports (its own figure
# module and the shared ones, found by planning.module_files): editing laziness.py reruns F2
# alone, editing style.py reruns every figure. In the report each figure is two entries, its PNG
# (shown inline) and its PDF, under one `format` toggle (planning.Figure.report_labels).


for figure in planning.FIGURES:

    rule figure:
        f"F{figure.number}: {figure.description}."
        name:
            figure.rule
        input:
            unpack(figure_inputs(figure)),
            code=code("ntkvae.plot", figure.module),
        output:
            pdf=report(
                figure.pattern("pdf"),
                caption=f"../{figure.caption}",
                category="Figures",
                subcategory="{dataset}",
                labels=figure.report_labels("pdf"),
            ),
            png=report(
                figure.pattern("png"),
                caption=f"../{figure.caption}",
                category="Figures",
                subcategory="{dataset}",
                labels=figure.report_labels("png"),
            ),
        log:
            figure.log_pattern(),
        benchmark:
            paths.FIGURE_BENCHMARK.partial(number=figure.number, topic=figure.topic)
        params:
            topic=figure.topic,
            options=figure_options(figure),
            dpi=lookup(dpath="figures/dpi", within=config),
        localrule: figure.local
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/plot.yaml"
        shell:
            "python -m ntkvae.plot {params.topic} --inputs {input.runs}{params.options} --dataset {wildcards.dataset} "
            "--pdf {output.pdf} --png {output.png} --dpi {params.dpi} > {log} 2>&1"
