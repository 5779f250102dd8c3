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
        launch=LAUNCH,
        proc_threads=PROCESS_THREADS,
        spec=lambda w: spec_arg(EXP.baseline_spec(w.student, int(w.seed))),
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: JOB_THREADS
    resources:
        mem_mb=RESOURCES["distill"]["mem_mb"],
        runtime=RESOURCES["distill"]["runtime"],
        gpu=GPU,
        cpus_per_task=JOB_THREADS,  # one task holds every process of the job
    shell:
        "exec {params.launch} distill --spec-json {params.spec} --threads {params.proc_threads} --out {params.out} > {log} 2>&1"


# Training commands start with `exec`: the shell becomes lskd (or torchrun), so a SIGTERM (SLURM's preemption and
# time-limit signal, which reaches every process of the job) finds lskd, which checkpoints the step it is in
# and exits 143, instead of killing the shell and leaving lskd to SLURM's SIGKILL (lskd.engine.preempt).
#
# Cells record a non-finite loss as a finished run with status diverged (metrics.json), so one diverged cell is a
# row of the tables, not a failed pipeline. metrics.json, written last, marks the run done; its logits file is
# named by the split it was evaluated on (val_logits in stage 1 of the validation protocol, else test_logits).
rule distill:
    input:
        teacher=lambda w: f"{teacher_dir_of_pair(w)}/metrics.json",
        teacher_model=lambda w: f"{teacher_dir_of_pair(w)}/model.safetensors",
    output:
        metrics=f"{R}/runs/{{pair}}/{{method}}/{{transform}}/T{{temperature}}_w{{kd_weight}}/seed{{seed}}/metrics.json",
    conda:
        CONDA_ENV
    log:
        "logs/runs/{pair}/{method}/{transform}/T{temperature}_w{kd_weight}/seed{seed}.log",
    params:
        launch=LAUNCH,
        proc_threads=PROCESS_THREADS,
        spec=lambda w: spec_arg(EXP.cell_spec(cell_of(w))),
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: JOB_THREADS
    resources:
        mem_mb=RESOURCES["distill"]["mem_mb"],
        runtime=RESOURCES["distill"]["runtime"],
        gpu=GPU,
        cpus_per_task=JOB_THREADS,  # one task holds every process of the job
    shell:
        "exec {params.launch} distill --spec-json {params.spec} --threads {params.proc_threads} --record-divergence --out {params.out} > {log} 2>&1"


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
        launch=LAUNCH,
        proc_threads=PROCESS_THREADS,
        group=lambda w: spec_arg(EXP.group_payload(f"groups/{w.pair}/seed{w.seed}/{w.method}-g{w.index}")),
    threads: JOB_THREADS
    resources:
        mem_mb=RESOURCES["distill"]["mem_mb"],
        runtime=RESOURCES["distill"]["runtime"],
        gpu=GPU,
        cpus_per_task=JOB_THREADS,  # one task holds every process of the job
    shell:
        "exec {params.launch} distill-group --group-json {params.group} --threads {params.proc_threads} --record-divergence "
        "--marker {output.marker} > {log} 2>&1"


# The validation protocol (protocol.selection: validation). Stage 1 is the grid above, evaluated on the held-out
# validation split only. This checkpoint reads nothing but the stage-1 cells' metrics.json (validation top-1), and
# their history.csv and val_logits for the run-health check (lskd.analysis.health), and writes each arm's chosen
# setting; Snakemake then re-evaluates the DAG, and stage 2 retrains exactly those settings with
# protocol.confirm_seeds, evaluated on the test set.
checkpoint select:
    input:
        cells=CELLS_DONE,
    output:
        selection=report(SELECTION, caption="../report/tables.rst", category="Tables"),
    conda:
        CONDA_ENV
    log:
        "logs/select.log",
    params:
        config=spec_arg(config),
    resources:
        mem_mb=RESOURCES["analysis"]["mem_mb"],
        runtime=RESOURCES["analysis"]["runtime"],
    shell:
        "lskd select --config-json {params.config} --out {output.selection} > {log} 2>&1"


rule confirm_group:
    input:
        teacher=lambda w: f"{teacher_dir_of_pair(w)}/metrics.json",
        teacher_model=lambda w: f"{teacher_dir_of_pair(w)}/model.safetensors",
        selection=SELECTION,
    output:
        marker=f"{R}/groups/confirm/{{pair}}/seed{{seed}}/g{{index}}.json",
    wildcard_constraints:
        index=r"\d+",
    conda:
        CONDA_ENV
    log:
        "logs/groups/confirm/{pair}/seed{seed}/g{index}.log",
    params:
        launch=LAUNCH,
        proc_threads=PROCESS_THREADS,
        group=lambda w, input: spec_arg(EXP.group_payload(
            f"groups/confirm/{w.pair}/seed{w.seed}/g{w.index}", EXP.confirm_groups(input.selection))),
    threads: JOB_THREADS
    resources:
        mem_mb=RESOURCES["distill"]["mem_mb"],
        runtime=RESOURCES["distill"]["runtime"],
        gpu=GPU,
        cpus_per_task=JOB_THREADS,  # one task holds every process of the job
    shell:
        "exec {params.launch} distill-group --group-json {params.group} --threads {params.proc_threads} --record-divergence "
        "--marker {output.marker} > {log} 2>&1"
