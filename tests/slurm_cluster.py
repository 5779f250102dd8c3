"""A real single-node SLURM cluster for tests: munged, slurmctld and slurmd started from a private folder.

Debian's packages (``apt-get install slurmctld slurmd slurm-client munge``; SLURM 22.05) ship no usable
service setup without systemd, so the cluster is configured from scratch:

* every path (config, state, spool, pid and log files, munge socket) lives in one fresh folder, and the
  daemons are stopped by their PIDs afterwards, so nothing outside that folder changes;
* ``SlurmctldHost`` is ``hostname -s`` and the node is ``127.0.0.1`` with this machine's cores and memory;
* ``select/cons_tres`` with ``CR_Core_Memory`` and ``DefMemPerCPU``, so jobs share the node instead of
  each one taking all of its memory;
* no accounting daemon (``accounting_storage/none``) and ``MinJobAge=300``, the setting under which the
  Snakemake SLURM plugin must query job states with ``squeue``;
* two partitions on the node, ``cpu`` (default) and ``gpu``, the names in
  ``workflow/profiles/slurm/partitions.yaml``. The node advertises two count-only GPUs (``gres/gpu``
  bound to ``/dev/null`` and ``/dev/zero``) so that ``sbatch --gpus=2`` is accepted and GPU jobs can be
  submitted; there is no GPU behind them.

Clients (``sbatch``, ``squeue``, the Snakemake plugin) find the cluster through ``SLURM_CONF``, see
:meth:`SlurmCluster.env`. One wrinkle: inside a job, snakemake-executor-plugin-slurm-jobstep (0.6.1) starts
the rule with a nested ``srun`` after removing every ``SLURM_*`` variable but the job's identity, so that
``srun`` finds no ``SLURM_CONF`` and looks for ``/etc/slurm/slurm.conf``. Real clusters keep their config
there (or serve it configless), so this only matters for a private cluster; rather than write into
``/etc``, :meth:`SlurmCluster.env` puts an ``srun`` first on ``PATH`` that sets ``SLURM_CONF`` and runs the
real one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
SBIN = Path("/usr/sbin")


def missing_requirements() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "starting slurmd and munged needs root"
    absent = [d for d in DAEMONS if not (SBIN / d).exists()] + [c for c in ("sbatch", "squeue") if not shutil.which(c)]
    if absent:
        return f"missing {', '.join(absent)} (apt-get install slurmctld slurmd slurm-client munge)"
    if not Path("/etc/munge/munge.key").exists():
        return "missing /etc/munge/munge.key (reinstall the munge package)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie awaiting its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """Start with :meth:`start` (or ``with SlurmCluster() as c``); :meth:`stop` kills the daemons by PID."""

    def __init__(self, cpus: int | None = None, mem_mb: int | None = None) -> None:
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus or os.cpu_count() or 1
        self.mem_mb = mem_mb or max(1024, _memory_mb() - 2048)
        self.dir: Path | None = None

    # -- configuration ------------------------------------------------------------------------------
    def _write_config(self) -> None:
        d = self.dir
        assert d is not None
        for sub in ("state", "spool", "log"):
            (d / sub).mkdir()
        conf = f"""\
ClusterName=lskdtest
SlurmctldHost={self.host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d / "munge" / "munge.socket"}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={d / "state"}
SlurmdSpoolDir={d / "spool"}
SlurmctldPidFile={d / "slurmctld.pid"}
SlurmdPidFile={d / "slurmd.pid"}
SlurmctldLogFile={d / "log" / "slurmctld.log"}
SlurmdLogFile={d / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
SchedulerParameters=sched_interval=1
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes={self.host} Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
PartitionName=gpu Nodes={self.host} MaxTime=INFINITE State=UP DefMemPerCPU=1000
"""
        (d / "slurm.conf").write_text(conf)
        (d / "gres.conf").write_text(f"NodeName={self.host} Name=gpu File=/dev/null\n"
                                     f"NodeName={self.host} Name=gpu File=/dev/zero\n")
        srun = shutil.which("srun") or "/usr/bin/srun"
        (d / "bin").mkdir()
        shim = d / "bin" / "srun"
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="{d / "slurm.conf"}" exec {srun} "$@"\n')
        shim.chmod(0o755)

    @property
    def conf(self) -> Path:
        assert self.dir is not None
        return self.dir / "slurm.conf"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment whose SLURM clients (and the nested ``srun`` of a job) talk to this cluster."""
        env = dict(os.environ if base is None else base, SLURM_CONF=str(self.conf))
        env["PATH"] = f"{self.conf.parent / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> SlurmCluster:
        reason = missing_requirements()
        if reason:
            raise RuntimeError(f"cannot start SLURM: {reason}")
        # not pytest's tmp_path: its parents are private to root, and munged runs as user munge
        self.dir = Path(tempfile.mkdtemp(prefix="lskd-slurm-"))
        self.dir.chmod(0o755)
        munge_dir = self.dir / "munge"
        munge_dir.mkdir(mode=0o755)
        shutil.chown(munge_dir, "munge", "munge")
        self._write_config()
        try:
            subprocess.run(
                ["runuser", "-u", "munge", "--", str(SBIN / "munged"), f"--socket={munge_dir / 'munge.socket'}",
                 f"--pid-file={munge_dir / 'munged.pid'}", f"--log-file={munge_dir / 'munged.log'}",
                 f"--seed-file={munge_dir / 'munged.seed'}"],
                check=True, capture_output=True, text=True, timeout=30,
            )
            subprocess.run([str(SBIN / "slurmctld"), "-i", "-f", str(self.conf)], check=True, timeout=30)
            subprocess.run([str(SBIN / "slurmd"), "-f", str(self.conf)], check=True, timeout=30)
            self._wait_idle(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=self.env(), capture_output=True, text=True)
            state = (out.stdout or out.stderr).strip()
            if out.returncode == 0 and state.startswith("idle"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"SLURM node not idle after {timeout:.0f} s (sinfo: {state!r}); logs:\n{self.logs()}")

    def pids(self) -> dict[str, int]:
        """PIDs of the running daemons, from their pid files."""
        assert self.dir is not None
        files = {"munged": self.dir / "munge" / "munged.pid", "slurmctld": self.dir / "slurmctld.pid",
                 "slurmd": self.dir / "slurmd.pid"}
        return {name: int(f.read_text()) for name, f in files.items() if f.exists() and f.read_text().strip()}

    def logs(self, tail: int = 40) -> str:
        if self.dir is None:
            return ""
        parts = []
        for f in sorted(self.dir.glob("**/*.log")):
            lines = f.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"== {f.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel every job, stop slurmd, slurmctld and munged by PID (SIGTERM, then SIGKILL), delete the folder."""
        if self.dir is None:
            return
        subprocess.run(["scancel", "--user", "root"], env=self.env(), capture_output=True, timeout=30)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids().get(name)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
