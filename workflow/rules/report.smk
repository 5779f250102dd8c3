rule report:
    input:
        tables=TABLES,
        claims=CLAIM_TABLES,
    output:
        md=f"{REPORT_DIR}/report.md",
        html=report(f"{REPORT_DIR}/report.html", caption="../report/report.rst", category="Report"),
        figures=report(
            directory(f"{REPORT_DIR}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    conda:
        CONDA_ENV
    log:
        "logs/report.log",
    params:
        results=lambda w, input: os.path.dirname(os.path.dirname(input.tables[0])),
        out=lambda w, output: os.path.dirname(output.md),
        config=spec_arg(config),
        command="snakemake --cores all"
        + "".join(f" --configfile {os.path.relpath(c)}" for c in workflow.overwrite_configfiles),
    resources:
        mem_mb=RESOURCES["analysis"]["mem_mb"],
        runtime=RESOURCES["analysis"]["runtime"],
    shell:
        "lskd report --results {params.results} --config-json {params.config} --out-dir {params.out} --command {params.command:q} > {log} 2>&1"
