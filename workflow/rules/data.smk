rule check_data:
    output:
        manifest=DATA_MANIFEST,
    conda:
        CONDA_ENV
    log:
        "logs/data.log",
    params:
        dataset=config["dataset"]["name"],
        root=f"--data-root {config['dataset']['root']}" if config["dataset"]["root"] else "",
        download="--download" if config["dataset"]["download"] else "",
    resources:
        mem_mb=RESOURCES["analysis"]["mem_mb"],
        runtime=RESOURCES["analysis"]["runtime"],
    shell:
        "lskd check-data --dataset {params.dataset} {params.root} {params.download} --out {output.manifest} > {log} 2>&1"
