"""End to end on a reduced copy of configs/cifar100.yaml: two pairs, one epoch, a CIFAR-100-format stand-in and an
mdistiller-format cifar_teachers.tar built here (each member holds options as an argparse.Namespace and numpy
scalars next to ``model``, as the published files do), served by file:// URL with no digest in the config.
The pipeline fetches both teachers, trusting them on first use (the lock records both), distils and reports;
the report's paper comparison lists the official rows and names why each deviates (1 epoch, not 240). A later
fetch verifies against the lock; a tampered member is refused with both digests and leaves nothing behind."""

from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from pipeline import copy_workflow, run_snakemake, snakemake_env
from test_tracks import _teacher, _write_cifar_standin

from lskd.cli import main as lskd_main
from lskd.teachers import read_lock
from lskd.workflow import Experiment, validate_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
MEMBERS = {"resnet32x4": "cifar_teachers/resnet32x4_vanilla/ckpt_epoch_240.pth",
           "wrn_40_2": "cifar_teachers/wrn_40_2_vanilla/ckpt_epoch_240.pth"}
PAIRS = [("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_2")]

pytestmark = pytest.mark.slow


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _archive(folder: Path, seeds: dict[str, int]) -> Path:
    """cifar_teachers.tar with one mdistiller checkpoint per teacher (random weights from ``seeds``)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "cifar_teachers.tar"
    with tarfile.open(archive, "w") as tar:
        for name, member in MEMBERS.items():
            ckpt = folder / f"{name}.pth"
            opt = argparse.Namespace(model=name, learning_rate=0.05, epochs=240, lr_decay_epochs=[150, 180, 210])
            torch.save({"model": _teacher(name, seeds[name]).state_dict(), "opt": opt, "epoch": 240,
                        "best_acc": np.float64(79.42)}, ckpt)
            tar.add(ckpt, arcname=member)
    return archive


def _reduced_config(tmp_path: Path, archive: Path, data: Path) -> dict:
    config = yaml.safe_load((ROOT / "configs/cifar100.yaml").read_text())
    config.update(results="results/cifar100_e2e", report="report/cifar100_e2e")
    config["dataset"].update(root=str(data), download=False, num_workers=0)
    config["execution"].update(device="cpu", threads=1, group_size=4)
    config["resources"] = {}
    keep = {t for t, _ in PAIRS}
    config["teachers"] = {t: c for t, c in config["teachers"].items() if t in keep}
    for teacher in config["teachers"].values():
        block = teacher["pretrained"]
        for key in ("sha256", "archive_sha256"):
            block.pop(key, None)  # no digest by hand: trusted on first use, then locked
        block.update(url=archive.as_uri(), min_top1=0.0)  # random stand-in weights: the gate stays, at 0
    config["pairs"] = [p for p in config["pairs"] if (p["teacher"], p["student"]) in PAIRS]
    config["student_optim"].update(epochs=1, eval_batch_size=100)
    config["grid"].update(methods=["kd", "dkd"], seeds=[0],
                          transform_grids={"zscore": {"temperatures": [2], "kd_weights": [9]}})
    return config


def test_reduced_cifar100_track_locks_teachers_verifies_them_and_reports_the_official_rows(tmp_path):
    data = tmp_path / "data"
    _write_cifar_standin(data, {"train": 2, "test": 1})
    archive = _archive(tmp_path / "srv", {"resnet32x4": 0, "wrn_40_2": 1})
    (tmp_path / "work").mkdir()
    work = copy_workflow(tmp_path / "work")
    config = _reduced_config(tmp_path, archive, data)
    (work / "configs/e2e.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = snakemake_env() | {"LSKD_CACHE": str(tmp_path / "cache")}
    env.pop("LSKD_DATA", None)

    out = run_snakemake(work, "--cores", "2", "--configfile", "configs/e2e.yaml", timeout=1200, env=env)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]

    # first use: both members and the archive are recorded in the track's lock, and the job logs say so
    lock_path = work / "results/cifar100_e2e/teachers.lock.json"
    lock = read_lock(lock_path)["entries"]
    with tarfile.open(archive) as tar:
        member_sha = {t: hashlib.sha256(tar.extractfile(m).read()).hexdigest() for t, m in MEMBERS.items()}
    assert {e["member"]: e["sha256"] for e in lock.values()} == {MEMBERS[t]: member_sha[t] for t in MEMBERS}
    assert {e["archive_sha256"] for e in lock.values()} == {_sha(archive)}
    for teacher in MEMBERS:
        log = (work / f"logs/teachers/{teacher}.log").read_text()
        assert member_sha[teacher] in log and "first use" in log

    # the report compares like with like: every official row of the two pairs, each deviating for 1 epoch
    official = pd.read_csv(work / "results/cifar100_e2e/tables/official.csv")
    assert len(official) == 2 * 2 * 2
    solver_stated = official.official.str.contains("epochs 240")
    assert set(official[solver_stated].status) == {"deviates"}  # the reduced copy trains 1 epoch, not 240
    assert all("epochs 1 (official 240)" in d for d in official[solver_stated].deviation)
    assert set(official[~solver_stated].status) == {"exact"}  # raw KD rows state no solver (mdistiller's defaults)
    assert official.n.min() == 1 and official.ours_best_top1_mean.notna().all()
    report = (work / "report/cifar100_e2e/report.md").read_text()
    assert "deviates:** epochs 1 (official 240)" in report
    for teacher, student in PAIRS:
        assert f"{teacher} → {student}" in report

    # a later fetch (another machine: empty cache, new run folder) verifies against the lock, which stays as is
    before = lock_path.read_bytes()
    exp = Experiment(validate_config(config, SCHEMA, runtime=False))

    def fetch(teacher: str, out_dir: Path, cache: Path) -> int:
        import os

        os.environ["LSKD_CACHE"] = str(cache)
        try:
            return lskd_main(["fetch-teacher", "--spec-json", json.dumps(exp.teacher_spec(teacher)),
                              "--pretrained-json", json.dumps(config["teachers"][teacher]["pretrained"]),
                              "--lock", str(lock_path), "--out", str(out_dir)])
        finally:
            os.environ.pop("LSKD_CACHE", None)

    assert fetch("resnet32x4", tmp_path / "again/resnet32x4", tmp_path / "cache2") == 0
    assert lock_path.read_bytes() == before

    # the same URL now serves other weights for resnet32x4: refused, both digests named, nothing left behind
    tampered = _archive(tmp_path / "srv", {"resnet32x4": 7, "wrn_40_2": 1})
    with tarfile.open(tampered) as tar:
        bad_sha = hashlib.sha256(tar.extractfile(MEMBERS["resnet32x4"]).read()).hexdigest()
    assert bad_sha != member_sha["resnet32x4"]
    with pytest.raises(SystemExit) as err:
        fetch("resnet32x4", tmp_path / "tampered/resnet32x4", tmp_path / "cache3")
    message = str(err.value)
    assert _sha(tampered) in message and _sha(archive) in message or (bad_sha in message and
                                                                       member_sha["resnet32x4"] in message)
    assert not (tmp_path / "tampered").exists()
    leftovers = [p for p in (tmp_path / "cache3").rglob("*") if p.is_file() and "locks" not in p.parts]
    assert leftovers == []
    assert lock_path.read_bytes() == before
