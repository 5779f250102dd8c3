# The ONE place that turns the config into cells, paths and job settings. All logic lives in lskd.workflow.
import os
import re

from lskd import layout
from lskd.workflow import Experiment, check_runtime, validate_config
from lskd.workflow.grid import spec_arg

# The schema and the structural checks (method names from lskd's method registry) run while parsing and build no
# model, so `snakemake -n` stays fast; models, method hyper-parameters and the data are checked in `onstart`,
# before the first job
# (`lskd check-config CONFIG` runs every check without Snakemake).
validate_config(config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"), runtime=False)


onstart:
    check_runtime(config)

EXP = Experiment(config)
R = EXP.results
REPORT_DIR = config["report"]
EXECUTION = config["execution"]
RESOURCES = config["resources"]
# Processes per training job: 1 runs `lskd`; N > 1 runs it under `torchrun --standalone --nproc_per_node N` (one
# process per GPU with device cuda, gloo processes on CPU; lskd.engine.distributed), as one task of one job,
# locally and on SLURM alike. A job asks for one GPU per process with device cuda; `auto` asks for none (it
# uses a GPU where one is already visible), and cpu for none.
PROCS = EXECUTION["processes_per_job"]
GPU = PROCS if EXECUTION["device"].startswith("cuda") else 0
EVAL_GPU = min(GPU, 1)  # jobs that only evaluate (fetch-teacher) run one process
LAUNCH = "lskd" if PROCS == 1 else f"torchrun --standalone --nproc_per_node {PROCS} -m lskd.cli"
PROCESS_THREADS = EXECUTION["threads"]  # CPU threads of each process; a job holds PROCS times as many
JOB_THREADS = PROCESS_THREADS * PROCS


def _alternatives(names):
    """A wildcard regex matching exactly these names (and nothing when there are none)."""
    return "|".join(sorted(map(re.escape, names))) or "(?!x)x"


TRAINED_TEACHERS = [t for t, c in config["teachers"].items() if c["source"] == "train"]
PRETRAINED_TEACHERS = [t for t, c in config["teachers"].items() if c["source"] == "pretrained"]


wildcard_constraints:
    teacher=_alternatives(config["teachers"]),
    pair=r"[^/]+__[^/]+",
    method=_alternatives(config["grid"]["methods"]),
    transform=_alternatives(config["grid"]["transforms"]),
    temperature=r"[0-9.e+-]+|learned",
    kd_weight=r"[0-9.e+-]+",
    seed=r"\d+",
    student=r"[^/]+",


CONDA_ENV = "../envs/lskd.yaml"  # relative to the rule files
RUN_DIRS = EXP.all_run_dirs()
REFERENCE_DIRS = [f"{R}/{EXP.teacher_path(t)}" for t in config["teachers"]] + [
    f"{R}/{EXP.baseline_path(s, seed)}" for s, seed in EXP.baselines()
]
GROUPED = EXP.group_size > 1
# what marks the distillation cells done: one marker per group, or each cell's own metrics
CELLS_DONE = (
    [f"{R}/{key}.json" for key in EXP.groups()]
    if GROUPED
    else [f"{R}/{cell.path}/metrics.json" for cell in EXP.cells()]
)
DATA_MANIFEST = f"{R}/data/{config['dataset']['name']}.json"
VALIDATION = EXP.validation  # two stages: the grid on a validation split, then the chosen settings on the test set
SELECTION = EXP.selection_path
TABLE_NAMES = layout.TABLES  # lskd.layout names every table and file once
TABLES = [str(layout.table_path(R, name)) for name in TABLE_NAMES]
REPORT = [f"{REPORT_DIR}/report.md", f"{REPORT_DIR}/report.html"]


def teacher_dir_of_pair(wildcards):
    teacher = wildcards.pair.split("__", 1)[0]
    return f"{R}/{EXP.teacher_path(teacher)}"


def cell_of(wildcards):
    path = (f"runs/{wildcards.pair}/{wildcards.method}/{wildcards.transform}/"
            f"T{wildcards.temperature}_w{wildcards.kd_weight}/seed{wildcards.seed}")
    if path not in EXP.cells_by_path:
        raise ValueError(f"{path} is not a cell of this config")
    return EXP.cells_by_path[path]


def confirm_markers(wildcards):
    """Stage 2's group markers, known once the `select` checkpoint has chosen the settings (validation only)."""
    if not VALIDATION:
        return []
    selection = checkpoints.select.get().output.selection
    return [f"{R}/{key}.json" for key in EXP.confirm_groups(selection)]


def confirm_run_dirs(selection_files):
    """Stage-2 run folders of the selection file(s) among a job's inputs (empty under the paper's protocol)."""
    return [EXP.run_dir(c.path) for f in selection_files for c in EXP.confirm_cells(str(f))]
