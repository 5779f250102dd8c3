RUN_OUTPUTS = ("metrics.json", "test_logits.safetensors", "model.safetensors", "history.csv", "spec.json")


rule train_teacher:
    input:
        data=DATA_MANIFEST,
    output:
        metrics=f"{R}/runs/teachers/{{teacher}}/metrics.json",
        logits=f"{R}/runs/teachers/{{teacher}}/test_logits.safetensors",
        model=f"{R}/runs/teachers/{{teacher}}/model.safetensors",
    wildcard_constraints:
        teacher=_alternatives(TRAINED_TEACHERS),
    conda:
        CONDA_ENV
    log:
        "logs/teachers/{teacher}.log",
    params:
        spec=lambda w: spec_arg(EXP.teacher_spec(w.teacher)),
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: EXECUTION["threads"]
    resources:
        mem_mb=RESOURCES["train_teacher"]["mem_mb"],
        runtime=RESOURCES["train_teacher"]["runtime"],
        gpu=GPU,
    shell:
        "lskd train-teacher --spec-json {params.spec} --threads {threads} --out {params.out} > {log} 2>&1"


rule fetch_teacher:
    input:
        data=DATA_MANIFEST,
    output:
        metrics=f"{R}/runs/teachers/{{teacher}}/metrics.json",
        logits=f"{R}/runs/teachers/{{teacher}}/test_logits.safetensors",
        model=f"{R}/runs/teachers/{{teacher}}/model.safetensors",
    wildcard_constraints:
        teacher=_alternatives(PRETRAINED_TEACHERS),
    conda:
        CONDA_ENV
    log:
        "logs/teachers/{teacher}.log",
    params:
        spec=lambda w: spec_arg(EXP.teacher_spec(w.teacher)),
        pretrained=lambda w: spec_arg(config["teachers"][w.teacher]["pretrained"]),
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: EXECUTION["threads"]
    resources:
        mem_mb=RESOURCES["train_teacher"]["mem_mb"],
        runtime=RESOURCES["train_teacher"]["runtime"],
        gpu=GPU,
    shell:
        "lskd fetch-teacher --spec-json {params.spec} --pretrained-json {params.pretrained} --out {params.out} > {log} 2>&1"
