# ntkvae: reproduce arXiv 2409.05349 (over-parameterized VAEs through the NTK) end to end.
#
#   snakemake --cores all                                   everything, default config.yaml
#   snakemake --cores all results/figures/<figure>.pdf      one figure and only what it needs
#   snakemake --workflow-profile profiles/slurm             on a SLURM cluster
#   snakemake --cores all --configfile configs/paper.yaml   the paper-scale reproduction
from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default; a --configfile replaces it (instead of being merged into it,
# which would leak the default's runs and datasets into a smaller configuration).
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/kernels.smk"
include: "rules/figures.smk"
include: "rules/report.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        all_targets(),


# The end of every run (success or failure) says what happened: print_summary, rules/common.smk.
onsuccess:
    print_summary(failed=False, log=log)


onerror:
    print_summary(failed=True, log=log)
