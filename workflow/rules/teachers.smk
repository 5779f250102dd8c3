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
        launch=LAUNCH,
        proc_threads=PROCESS_THREADS,
        spec=lambda w: spec_arg(EXP.teacher_spec(w.teacher)),
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: JOB_THREADS
    resources:
        mem_mb=RESOURCES["train_teacher"]["mem_mb"],
        runtime=RESOURCES["train_teacher"]["runtime"],
        gpu=GPU,
        cpus_per_task=JOB_THREADS,  # one task holds every process of the job
    shell:
        "exec {params.launch} train-teacher --spec-json {params.spec} --threads {params.proc_threads} --out {params.out} > {log} 2>&1"


# Fetched teachers are verified against the digests pinned in the config or, where none is pinned, against the
# track's lock file EXP.teacher_lock (<results>/teachers.lock.json): the first fetch records the digests it computes
# there (trust on first use), every later fetch must match them. The lock is not an output: all fetch_teacher jobs
# of the track read and update the same file (under a file lock, replaced atomically), and Snakemake allows a file
# to be the output of one job only; declaring it would also let Snakemake delete it when a job fails, losing the
# digests it exists to keep.
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
        lock=EXP.teacher_lock,
        strict="--strict" if config["teacher_verification"]["strict"] else "",
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: EXECUTION["threads"]
    resources:
        mem_mb=RESOURCES["train_teacher"]["mem_mb"],
        runtime=RESOURCES["train_teacher"]["runtime"],
        gpu=EVAL_GPU,
    shell:
        "lskd fetch-teacher --spec-json {params.spec} --pretrained-json {params.pretrained} --lock {params.lock:q} "
        "{params.strict} --out {params.out} > {log} 2>&1"
