rule collect:
    input:
        metrics=[f"{d}/metrics.json" for d in REFERENCE_DIRS],
        cells=CELLS_DONE,
        confirm=confirm_markers,
        selection=[SELECTION] if VALIDATION else [],
    output:
        runs=report(str(layout.table_path(R, layout.RUNS_TABLE)), caption="../report/tables.rst", category="Tables"),
    conda:
        CONDA_ENV
    log:
        "logs/collect.log",
    params:
        runs=lambda w, input: RUN_DIRS + confirm_run_dirs(input.selection),
        # the run-health gate's not-converged threshold; null in the config switches the check off
        share=str((config.get("health") or {}).get("not_converged_share", "default")).lower(),
    resources:
        mem_mb=RESOURCES["analysis"]["mem_mb"],
        runtime=RESOURCES["analysis"]["runtime"],
    shell:
        "lskd collect {params.runs} --not-converged-share {params.share} --out {output.runs} > {log} 2>&1"


# `lskd tables` also writes each run's per-sample logit statistics (RUN/logit_stats.safetensors), recomputing
# only those older than their logits. With the config it writes official.csv: every official setting of the
# config's pairs (lskd.analysis.official, the one source) next to the paper's number, the official log's and ours
# at that point (header only for a dataset without official settings).
rule tables:
    input:
        runs=rules.collect.output.runs,
        logits=[f"{d}/test_logits.safetensors" for d in REFERENCE_DIRS],
        cells=CELLS_DONE,
    output:
        **{
            name: report(str(layout.table_path(R, name)), caption="../report/tables.rst", category="Tables")
            for name in layout.ANALYSIS_TABLES
        },
    conda:
        CONDA_ENV
    log:
        "logs/tables.log",
    params:
        out=lambda w, output: os.path.dirname(output[0]),
        config=spec_arg(config),
    resources:
        mem_mb=RESOURCES["analysis"]["mem_mb"],
        runtime=RESOURCES["analysis"]["runtime"],
    shell:
        "lskd tables --runs-csv {input.runs} --config-json {params.config} --out-dir {params.out} > {log} 2>&1"


# The claims audit (lskd.analysis.claims): the paper's explanation tested on every run, after `tables` has
# written each run's per-sample logit statistics.
CLAIM_TABLES = [str(layout.table_path(R, name)) for name in layout.CLAIM_TABLES]


rule claims:
    input:
        runs=rules.collect.output.runs,
        tables=rules.tables.output,
    output:
        claims=report(CLAIM_TABLES[0], caption="../report/tables.rst", category="Tables"),
        runs=report(CLAIM_TABLES[1], caption="../report/tables.rst", category="Tables"),
    conda:
        CONDA_ENV
    log:
        "logs/claims.log",
    params:
        out=lambda w, output: os.path.dirname(output.claims),
        config=spec_arg(config),
    resources:
        mem_mb=RESOURCES["analysis"]["mem_mb"],
        runtime=RESOURCES["analysis"]["runtime"],
    shell:
        "lskd claims --runs-csv {input.runs} --config-json {params.config} --out-dir {params.out} > {log} 2>&1"
