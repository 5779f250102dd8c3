rule report:
    input:
        tables=TABLES,
    output:
        md=f"{REPORT_DIR}/report.md",
        html=f"{REPORT_DIR}/report.html",
        figures=directory(f"{REPORT_DIR}/figures"),
    log:
        "logs/report.log",
    params:
        config=spec_arg(config),
        command="snakemake --cores all" + (f" --configfile {workflow.overwrite_configfiles[-1]}" if workflow.overwrite_configfiles else ""),
    resources:
        mem_mb=RESOURCES["analysis"]["mem_mb"],
        runtime=RESOURCES["analysis"]["runtime"],
    shell:
        "lskd report --results {R} --config-json {params.config} --out-dir {REPORT_DIR} --command {params.command:q} > {log} 2>&1"
