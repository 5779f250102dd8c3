rule train_baseline:
    input:
        data=DATA_MANIFEST,
    output:
        metrics=f"{R}/runs/baselines/{{student}}/seed{{seed}}/metrics.json",
        logits=f"{R}/runs/baselines/{{student}}/seed{{seed}}/test_logits.safetensors",
    conda:
        CONDA_ENV
    log:
        "logs/baselines/{student}/seed{seed}.log",
    params:
        spec=lambda w: spec_arg(EXP.baseline_spec(w.student, int(w.seed))),
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: EXECUTION["threads"]
    resources:
        mem_mb=RESOURCES["distill"]["mem_mb"],
        runtime=RESOURCES["distill"]["runtime"],
        gpu=GPU,
    shell:
        "lskd distill --spec-json {params.spec} --threads {threads} --out {params.out} > {log} 2>&1"


rule distill:
    input:
        teacher=lambda w: f"{teacher_dir_of_pair(w)}/metrics.json",
        teacher_model=lambda w: f"{teacher_dir_of_pair(w)}/model.safetensors",
    output:
        metrics=f"{R}/runs/{{pair}}/{{method}}/{{transform}}/T{{temperature}}_w{{kd_weight}}/seed{{seed}}/metrics.json",
        logits=f"{R}/runs/{{pair}}/{{method}}/{{transform}}/T{{temperature}}_w{{kd_weight}}/seed{{seed}}/test_logits.safetensors",
    conda:
        CONDA_ENV
    log:
        "logs/runs/{pair}/{method}/{transform}/T{temperature}_w{kd_weight}/seed{seed}.log",
    params:
        spec=lambda w: spec_arg(EXP.cell_spec(cell_of(w))),
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: EXECUTION["threads"]
    resources:
        mem_mb=RESOURCES["distill"]["mem_mb"],
        runtime=RESOURCES["distill"]["runtime"],
        gpu=GPU,
    shell:
        "lskd distill --spec-json {params.spec} --threads {threads} --out {params.out} > {log} 2>&1"


rule distill_group:
    input:
        teacher=lambda w: f"{teacher_dir_of_pair(w)}/metrics.json",
        teacher_model=lambda w: f"{teacher_dir_of_pair(w)}/model.safetensors",
    output:
        marker=f"{R}/groups/{{pair}}/seed{{seed}}/{{method}}-g{{index}}.json",
    wildcard_constraints:
        index=r"\d+",
    conda:
        CONDA_ENV
    log:
        "logs/groups/{pair}/seed{seed}/{method}-g{index}.log",
    params:
        group=lambda w: spec_arg(EXP.group_payload(f"groups/{w.pair}/seed{w.seed}/{w.method}-g{w.index}")),
    threads: EXECUTION["threads"]
    resources:
        mem_mb=RESOURCES["distill"]["mem_mb"],
        runtime=RESOURCES["distill"]["runtime"],
        gpu=GPU,
    shell:
        "lskd distill-group --group-json {params.group} --threads {threads} --marker {output.marker} > {log} 2>&1"
