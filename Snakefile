# lskd: does logit standardization help KD, DKD, CTKD and MLKD on my teacher/student pairs?
# Run:   snakemake --cores all                       (configs/default.yaml, the offline Fashion-MNIST demo)
#        snakemake --cores all --configfile configs/smoke.yaml
# The config is validated against workflow/schemas/config.schema.yaml before any job runs.
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless the user names a config: --configfile REPLACES it rather than being merged
# into it, so a config never inherits teachers or cells from another one.
if not workflow.overwrite_configfiles:

    configfile: "configs/default.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teachers.smk"
include: "workflow/rules/distill.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        TABLES,
        REPORT,
    default_target: True
