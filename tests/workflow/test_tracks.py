"""Paper-scale tracks: configs/cifar100.yaml, cifar100_ablation.yaml and imagenet.yaml (dry-run DAGs with the
job counts the README states), per-transform grids, and teacher import from published weights (members of
mdistiller's tar archive, timm weight files) with SHA-256 verification, strict architecture checks and an
end-to-end import on a CIFAR-100 stand-in. Offline and CPU only."""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import subprocess
import tarfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
import timm
import torch
import yaml
from PIL import Image
from pipeline import SNAKEMAKE, copy_workflow, snakemake_env
from safetensors.torch import save_file

import lskd.models  # noqa: F401  (registers the CIFAR architectures)
from lskd.analysis.paper import paper_results, to_paper_model
from lskd.cli import main as lskd_main
from lskd.data import build_dataset
from lskd.data.cifar100 import write_standin
from lskd.data.download import ChecksumError
from lskd.engine.evaluate import predict
from lskd.engine.io import read_json, read_tensors
from lskd.engine.pretrained import (
    build_pretrained_model,
    fetch_weights,
    import_pretrained,
    map_state_dict,
)
from lskd.engine.spec import RunSpec
from lskd.teachers import ChecksumMissingError, load_records, resolve_checksums
from lskd.teachers import main as teachers_main
from lskd.workflow import ConfigError, Experiment, validate_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
MDISTILLER_URL = "https://github.com/megvii-research/mdistiller/releases/download/checkpoints/cifar_teachers.tar"
MEMBER = "cifar_teachers/resnet32x4_vanilla/ckpt_epoch_240.pth"
TRACKS = ("cifar100", "cifar100_ablation", "imagenet")


def raw(name: str) -> dict:
    return yaml.safe_load((ROOT / f"configs/{name}.yaml").read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(folder: Path) -> list[str]:
    """Files in the download cache, ignoring its lock files."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "locks" not in p.parts)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LSKD_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LSKD_DATA", raising=False)
    return cache


# ------------------------------------------------------------------------------------------ dry runs vs README
def _readme_job_counts() -> dict[str, dict[str, int]]:
    """The job-count table of configs/README.md's "GPU and paper-scale tracks" section: {config: {rule: count}}."""
    text = (ROOT / "configs/README.md").read_text()
    section = text[text.index("## GPU and paper-scale tracks"):]
    lines = [ln for ln in section.splitlines() if ln.startswith("| rule |")]
    assert lines, "README: no '| rule | ...' job-count table in the GPU section"
    start = section.splitlines().index(lines[0])
    rows = section.splitlines()[start:]
    header = [c.strip().strip("`") for c in rows[0].strip("|").split("|")]
    counts: dict[str, dict[str, int]] = {h.removeprefix("configs/").removesuffix(".yaml"): {} for h in header[1:]}
    for row in rows[2:]:
        if not row.startswith("|"):
            break
        cells = [c.strip().strip("`*") for c in row.strip("|").split("|")]
        for config, value in zip(counts, cells[1:]):
            counts[config][cells[0]] = int(value.replace(",", ""))
    return counts


def _dry_run(workdir: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([*SNAKEMAKE, "-n", "--quiet", "rules", "--configfile",
                             f"configs/{name}.yaml"], cwd=workdir, env=snakemake_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _counts(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", output, re.M)}


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, tuple[dict[str, int], float]]:
    work = copy_workflow(tmp_path_factory.mktemp("tracks"))
    out = {}
    # the big one alone, timed in CPU seconds (user + system of the child): unlike wall time it does not grow when
    # another test worker shares the machine
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = _dry_run(work, "cifar100")
    text = proc.communicate(timeout=120)[0]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    out["cifar100"] = (_counts(text), cpu, proc.returncode, text)
    procs = {name: (_dry_run(work, name), time.perf_counter()) for name in TRACKS[1:]}
    for name, (proc, t0) in procs.items():
        text = proc.communicate(timeout=120)[0]
        out[name] = (_counts(text), time.perf_counter() - t0, proc.returncode, text)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", TRACKS)
def test_dry_run_lists_the_jobs_the_readme_states(dry_runs, name):
    counts, seconds, rc, text = dry_runs[name]
    assert rc == 0, text[-3000:]
    print(f"{name}: snakemake -n {seconds:.1f} s, {counts.get('total')} jobs")
    assert counts == _readme_job_counts()[name]


@pytest.mark.slow
def test_cifar100_dry_run_is_fast(dry_runs):
    counts, seconds, rc, _ = dry_runs["cifar100"]
    assert rc == 0 and counts["distill"] == 3036
    # 3,084 jobs: 20.5 CPU s on the 2-core dev box (AMD EPYC) at this commit. The budget catches what would cost
    # far more (torch imports, model or data checks while parsing), not a few percent of machine variance.
    assert seconds < 30, f"snakemake -n on configs/cifar100.yaml took {seconds:.1f} CPU seconds"


# ------------------------------------------------------------------------------------------ the configs
def test_cifar100_config_covers_the_papers_pairs_with_official_settings():
    config = validate_config(raw("cifar100"), SCHEMA, runtime=False)
    exp = Experiment(config)
    teachers = config["teachers"]
    ours = {(to_paper_model(teachers[p["teacher"]]["model"]), to_paper_model(p["student"])) for p in config["pairs"]}
    paper = paper_results()
    theirs = set(map(tuple, paper.loc[paper.dataset == "cifar100", ["teacher", "student"]].drop_duplicates().values))
    assert len(config["pairs"]) == 14 and ours == theirs
    for pair in config["pairs"]:
        student = pair["student"]
        assert exp.student_optim(pair)["lr"] == (0.01 if student.startswith(("mobilenet", "shufflenet")) else 0.05)
        beta = exp.hparams(pair, "dkd", "none")["beta"]
        assert beta == {"resnet56": 2.0, "resnet110": 2.0, "vgg13": 6.0, "wrn_40_2": 6.0}.get(pair["teacher"], 8.0)
    optim = config["student_optim"]
    assert (optim["epochs"], optim["batch_size"], optim["milestones"], optim["weight_decay"]) == (240, 64, [150, 180, 210], 5e-4)
    cells = exp.cells()
    raw_kd = {(c.temperature, c.kd_weight) for c in cells if c.method == "kd" and c.transform == "none"}
    ls_kd = {(c.temperature, c.kd_weight) for c in cells if c.method == "kd" and c.transform == "zscore"}
    assert raw_kd == {(4.0, 0.9)}
    # the sweep, plus resnet50 -> MobileNetV2's logged point (tau 3, w 1; pairs[].points)
    assert ls_kd == {(t, w) for t in (2.0, 3.0, 4.0) for w in (3.0, 6.0, 9.0, 12.0, 15.0)} | {(3.0, 1.0)}
    assert {c.kd_weight for c in cells if c.method == "ctkd" and c.transform == "zscore"} == {3.0, 6.0, 9.0, 12.0, 15.0}
    assert {c.seed for c in cells} == {0, 1, 2, 3}
    spec = exp.cell_spec(next(c for c in cells if c.method == "dkd" and c.transform == "zscore"))
    assert spec["hparams"]["warmup"] == 20 and spec["hparams"]["transform"] == "zscore"
    for tid, teacher in teachers.items():
        pre = teacher["pretrained"]
        assert pre["url"] == MDISTILLER_URL and pre["format"] == "mdistiller"
        assert pre["member"] in load_records()["archives"]["mdistiller_cifar_teachers"]["members"]


def test_ablation_config_is_table4():
    config = validate_config(raw("cifar100_ablation"), SCHEMA, runtime=False)
    cells = Experiment(config).cells()
    assert {(c.transform, c.kd_weight) for c in cells} == {
        (t, w) for t in ("none", "center", "scale", "zscore") for w in (0.9, 3, 6, 9, 12, 15, 18)}
    assert {(c.method, c.temperature) for c in cells} == {("kd", 2.0)}
    spec = Experiment(config).cell_spec(cells[0])
    assert spec["hparams"]["ce_weight"] == 0.1


def test_imagenet_config_passes_every_check_and_names_existing_timm_models():
    config = validate_config(raw("imagenet"), SCHEMA, check_data=False)  # models, hparams, checksums
    for teacher in config["teachers"].values():
        assert timm.models.get_pretrained_cfg(teacher["pretrained"]["timm"]).num_classes == 1000
    assert [p["student"] for p in config["pairs"]] == ["resnet18", "mobilenetv1_100"]
    assert "mobilenetv1_100" in timm.list_models("mobilenetv1*")
    assert to_paper_model("mobilenetv1_100") == "mobilenet_v1"
    optim, ex = config["student_optim"], config["execution"]
    assert (optim["batch_size"], optim["lr"], optim["weight_decay"], optim["epochs"], optim["milestones"]) == \
        (512, 0.2, 1e-4, 100, [30, 60, 90])
    assert (ex["device"], ex["amp"], ex["channels_last"]) == ("cuda", "bf16", True)
    kd = Experiment(config).cell_spec(next(c for c in Experiment(config).cells() if c.method == "kd" and c.transform == "none"))
    assert (kd["hparams"]["temperature"], kd["hparams"]["ce_weight"], kd["hparams"]["kd_weight"]) == (1.0, 1.0, 0.5)


def test_cifar100_starts_without_known_checksums_and_strict_verification_refuses():
    validate_config(raw("cifar100"), SCHEMA, check_data=False)  # unknown digests: trusted on first use (lock file)
    config = raw("cifar100")
    config["teacher_verification"] = {"strict": True}
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA, check_data=False)
    message = str(err.value)
    assert "refusing to fetch teacher weights whose SHA-256 is not pinned" in message
    for tid in ("vgg13", "wrn_40_2", "resnet56", "resnet110", "resnet50"):
        assert f"teachers.{tid}.pretrained.sha256" in message
    assert "teachers.resnet32x4.pretrained.sha256" not in message  # recorded (third-party)
    assert "teachers.resnet32x4.pretrained.archive_sha256" in message and "sha256sum cifar_teachers.tar" in message


def test_teachers_json_records_only_what_is_known():
    archive = load_records()["archives"]["mdistiller_cifar_teachers"]
    assert archive["url"] == MDISTILLER_URL and archive["sha256"] is None
    known = {m: e for m, e in archive["members"].items() if e["sha256"]}
    assert known == {MEMBER: {**archive["members"][MEMBER]}}
    assert known[MEMBER]["sha256"] == "22aa12e2b632b19ddde155ccf2388671842ddd304824b3095e0a7fff364beb4f"
    assert known[MEMBER]["source"] == "known: two unrelated public records agree on this digest; not computed here"
    for entry in archive["members"].values():
        assert timm.is_model(entry["model"])


# ------------------------------------------------------------------------------------------ per-transform grids
def _smoke() -> dict:
    return yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())


def test_transform_grids_replace_axes_per_transform():
    config = _smoke()
    config["grid"].update(methods=["kd", "ctkd"], temperatures=[4], seeds=[0],
                          transform_grids={"zscore": {"temperatures": [2, 3], "kd_weights": [6, 9]}})
    exp = Experiment(validate_config(config, SCHEMA, runtime=False))
    got = sorted((c.method, c.transform, c.temperature_label, c.kd_weight) for c in exp.cells())
    assert got == sorted([("kd", "none", "4", 0.9), ("ctkd", "none", "learned", 0.9)]
                         + [("kd", "zscore", t, w) for t in ("2", "3") for w in (6.0, 9.0)]
                         + [("ctkd", "zscore", "learned", w) for w in (6.0, 9.0)])
    ls_kd = next(c for c in exp.cells() if c.transform == "zscore" and c.method == "kd")
    assert exp.cell_spec(ls_kd)["hparams"]["transform"] == "zscore"


@pytest.mark.parametrize("grids,message", [
    ({"zcore": {"temperatures": [2]}}, r"grid\.transform_grids: unknown key 'zcore' \(did you mean 'zscore'\?\)"),
    ({"center": {"temperatures": [2]}}, r"grid\.transform_grids\.center: transform not in grid\.transforms"),
    ({"zscore": {"temperature": [2]}}, r"unknown key 'temperature' \(did you mean 'temperatures'\?\)"),
])
def test_transform_grids_errors_name_the_key(grids, message):
    config = _smoke()
    config["grid"]["transform_grids"] = grids
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA, runtime=False)


@pytest.mark.parametrize("pretrained,message", [
    ({"url": "https://example.org/w.pth"}, r"pretrained\.min_top1: missing; every fetched teacher needs"),
    ({"member": "a/b.pth", "sha256": "0" * 64, "format": "mdistiller"}, r"member: a member needs the archive's url or file"),
    ({"timm": "resnet50.tv_in1k"}, r"tag 'resnet50\.tv_in1k' is a 'resnet50', but the teacher's model is 'cnn_w24d4'"),
    ({"file": "w.pth", "sha256": "abc"}, r"sha256: 'abc' does not match"),
])
def test_pretrained_block_errors(pretrained, message):
    config = _smoke()
    config["teachers"]["cnn_w24d4"].update(source="pretrained", pretrained=pretrained)
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA, runtime=False)


# ------------------------------------------------------------------------------------------ mdistiller archives
def _teacher(name: str = "resnet32x4", seed: int = 0) -> torch.nn.Module:
    """A model with random weights and random BatchNorm statistics (so every buffer matters in eval)."""
    torch.manual_seed(seed)
    model = timm.create_model(name, num_classes=100)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def _mdistiller_archive(folder: Path, model: torch.nn.Module, member: str = MEMBER) -> tuple[Path, str, str]:
    """``cifar_teachers.tar`` holding ``member`` as mdistiller/CRD save it: ``{"model": state_dict, ...}`` in
    torch's legacy (pre-1.6) serialization, next to another member. Returns (archive, archive sha, member sha)."""
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / "ckpt_epoch_240.pth"
    state = {"epoch": 240, "model": model.state_dict(), "best_acc": torch.tensor(79.42),
             "optimizer": {"state": {}, "param_groups": [{"lr": 5e-5, "momentum": 0.9, "params": [0, 1]}]}}
    torch.save(state, ckpt, _use_new_zipfile_serialization=False)
    other = folder / "other.pth"
    torch.save({"model": {}}, other)
    archive = folder / "cifar_teachers.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(other, arcname="cifar_teachers/resnet56_vanilla/ckpt_epoch_240.pth")
        tar.add(ckpt, arcname=member)
    return archive, sha256(archive), sha256(ckpt)


def _member_block(archive: Path, archive_sha: str, member_sha: str, **extra) -> dict:
    return {"url": archive.as_uri(), "member": MEMBER, "format": "mdistiller", "sha256": member_sha,
            "archive_sha256": archive_sha, **extra}


def test_converted_mdistiller_teacher_reproduces_its_logits_bit_exactly(tmp_path, _cache):
    original = _teacher()
    archive, archive_sha, member_sha = _mdistiller_archive(tmp_path / "srv", original)
    pretrained = _member_block(archive, archive_sha, member_sha)
    weights = fetch_weights(pretrained, tmp_path / "run")
    assert weights.parent.parent == _cache / "members" and sha256(weights) == member_sha
    assert files_under(_cache) == sorted([f"archives/{archive_sha}/cifar_teachers.tar",
                                          f"members/{member_sha}/ckpt_epoch_240.pth"])
    converted = build_pretrained_model("resnet32x4", pretrained, weights, 100, 3).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(converted(x), original(x))
    # a second fetch reuses the verified cache: nothing is downloaded again
    (archive).unlink()
    assert fetch_weights(pretrained, tmp_path / "run") == weights


def test_recorded_checksum_is_used_and_strict_refuses_unknown_ones_before_any_download(monkeypatch):
    import lskd.data.download as download

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(download, "_open_url", no_network)
    block = {"url": MDISTILLER_URL, "member": MEMBER, "format": "mdistiller", "sha256": "recorded",
             "archive_sha256": "recorded"}
    recorded = load_records()["archives"]["mdistiller_cifar_teachers"]["members"][MEMBER]["sha256"]
    resolved = resolve_checksums(block)  # the archive's digest is not recorded: left to trust on first use
    assert resolved["sha256"] == recorded and "archive_sha256" not in resolved
    with pytest.raises(ChecksumMissingError, match=r"archive_sha256: 'recorded', but .* records no SHA-256") as err:
        fetch_weights(block, Path("unused"), strict=True)
    assert "sha256sum cifar_teachers.tar" in str(err.value) and "python -m lskd.teachers" in str(err.value)
    assert err.value.problems == [p for p in err.value.problems if "archive_sha256" in p]  # member digest is recorded
    assert resolve_checksums({**block, "archive_sha256": "a" * 64}, strict=True)["sha256"] == recorded
    other = {**block, "member": "cifar_teachers/vgg13_vanilla/ckpt_epoch_240.pth", "archive_sha256": "a" * 64}
    with pytest.raises(ChecksumMissingError, match=r"tar -xOf cifar_teachers\.tar cifar_teachers/vgg13_vanilla"):
        fetch_weights(other, Path("unused"), strict=True)
    with pytest.raises(ChecksumMissingError, match=r"torchvision names .* by its SHA-256 prefix b627a593"):
        resolve_checksums({"timm": "resnet34.tv_in1k", "sha256": "f" * 64,
                           "url": "https://download.pytorch.org/models/resnet34-b627a593.pth"})


def test_wrong_checksums_are_refused_and_leave_no_file(tmp_path, _cache):
    archive, archive_sha, member_sha = _mdistiller_archive(tmp_path / "srv", _teacher("resnet8x4"))
    with pytest.raises(ChecksumError, match=rf"archive .*: SHA-256 mismatch: actual {archive_sha}, expected 0{{64}}"):
        fetch_weights(_member_block(archive, "0" * 64, member_sha), tmp_path / "run")
    assert files_under(_cache) == []
    with pytest.raises(ChecksumError, match=r"ckpt_epoch_240\.pth: SHA-256 mismatch"):
        fetch_weights(_member_block(archive, archive_sha, "1" * 64), tmp_path / "run")
    assert files_under(_cache) == [f"archives/{archive_sha}/cifar_teachers.tar"]  # the verified archive only
    local = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(2)}, local)
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        fetch_weights({"file": str(local), "sha256": "2" * 64}, tmp_path / "run")


def test_wrong_architecture_is_refused_naming_the_model(tmp_path):
    archive, archive_sha, member_sha = _mdistiller_archive(tmp_path / "srv", _teacher("resnet8x4"))
    pretrained = _member_block(archive, archive_sha, member_sha)
    weights = fetch_weights(pretrained, tmp_path / "run")
    with pytest.raises(ValueError, match=r"does not fit model 'resnet32x4' \(7,433,860 parameters\).*(missing|shape)"):
        build_pretrained_model("resnet32x4", pretrained, weights, 100, 3)
    with pytest.raises(ValueError, match=r"does not fit model 'wrn_40_2'.*unexpected keys"):
        build_pretrained_model("wrn_40_2", pretrained, weights, 100, 3)


def test_key_mapping_strips_wrappers_and_fills_old_batchnorm_counters():
    model = timm.create_model("resnet8x4", num_classes=100)
    state = {f"module.student.{k}": v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    mapped = map_state_dict(state, model, "resnet8x4")
    assert list(mapped) == list(model.state_dict())
    with pytest.raises(ValueError, match=r"1 shape mismatches: fc\.weight: checkpoint \(10, 256\) vs model \(100, 256\)"):
        bad = dict(model.state_dict(), **{"fc.weight": torch.zeros(10, 256)})
        map_state_dict(bad, model, "resnet8x4")


def test_teachers_cli_prints_archive_digests(tmp_path, capsys):
    archive, archive_sha, member_sha = _mdistiller_archive(tmp_path, _teacher("resnet8x4"))
    assert teachers_main([str(archive)]) == 0
    out = capsys.readouterr().out
    assert f"archive_sha256: {archive_sha}" in out and f"# member: {MEMBER}\nsha256: {member_sha}" in out


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow

def _write_cifar_standin(root: Path, per_class: dict[str, int]) -> None:
    """A CIFAR-100 stand-in with ``per_class[split]`` random images per class (classes c00 … c99)."""
    write_standin(root, n_train=100 * per_class["train"], n_test=100 * per_class["test"],
                  class_names=[f"c{k:02d}" for k in range(100)])


def test_cifar100_teacher_import_end_to_end_through_the_workflow_command(tmp_path, capsys):
    """configs/cifar100.yaml's resnet32x4 teacher, served from a local archive, through `lskd fetch-teacher` as the
    fetch_teacher rule runs it: refused below min_top1 (nothing written), then imported; its test logits equal
    the original network's."""
    data = tmp_path / "data"
    _write_cifar_standin(data, {"train": 1, "test": 1})
    original = _teacher()
    archive, archive_sha, member_sha = _mdistiller_archive(tmp_path / "srv", original)
    config = raw("cifar100")
    config["dataset"].update(root=str(data), download=False, test_subset=20)  # 20 of the 100 test images: fast
    config["execution"].update(device="cpu", threads=1)
    block = config["teachers"]["resnet32x4"]["pretrained"]
    assert block["min_top1"] > 50 and block["member"] == MEMBER
    block.update(url=archive.as_uri(), sha256=member_sha, archive_sha256=archive_sha)
    config["teachers"] = {"resnet32x4": config["teachers"]["resnet32x4"]}
    config["pairs"] = config["pairs"][:1]
    config = validate_config(config, SCHEMA, check_data=True)
    exp = Experiment(config)
    out = tmp_path / "results/runs/teachers/resnet32x4"

    def fetch(pretrained: dict) -> int:
        return lskd_main(["fetch-teacher", "--spec-json", json.dumps(exp.teacher_spec("resnet32x4")),
                          "--pretrained-json", json.dumps(pretrained), "--out", str(out)])

    # a user error: one line naming the gate (lskd fetch-teacher: error: ...), no traceback
    with pytest.raises(SystemExit, match=r"fetch-teacher: error: .*test top-1 \d+\.\d+% is below min_top1 77\.4%"):
        fetch(block)
    assert not (out / "metrics.json").exists()
    assert fetch({k: v for k, v in block.items() if k != "min_top1"}) == 0
    metrics = read_json(out / "metrics.json")
    assert metrics["num_test"] == 20
    logits = read_tensors(out / "test_logits.safetensors")
    test_set = build_dataset("cifar100", "test", root=data, views=("eval",), subset=20, seed=0)
    expected, targets = predict(original, test_set, batch_size=1024, device=torch.device("cpu"))
    assert torch.equal(logits["logits"], expected) and torch.equal(logits["targets"], targets)
    record = read_json(out / "pretrained.json")
    assert (record["member"], record["sha256"], record["archive_sha256"]) == (MEMBER, member_sha, archive_sha)
    spec = read_json(out / "spec.json")
    assert spec["spec"]["model"] == "resnet32x4" and spec["resolved"]["num_params"] == 7_433_860
    saved = read_tensors(out / "model.safetensors")  # what distill jobs load as the teacher
    assert all(torch.equal(saved[k], v) for k, v in original.state_dict().items())


WNIDS = ["n01440764", "n01443537", "n01484850"]


def test_timm_weight_file_loads_offline_and_evaluates_on_an_imagefolder_standin(tmp_path, monkeypatch):
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was contacted")

    import timm.models._hub as timm_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_hub)
    monkeypatch.setattr(timm_hub, "hf_hub_download", no_hub)
    rng = np.random.default_rng(0)
    for k, wnid in enumerate(WNIDS):
        folder = tmp_path / "imagenet/val" / wnid
        folder.mkdir(parents=True)
        for j in range(2):
            Image.fromarray(rng.integers(0, 256, (40 + 9 * j, 50 + 7 * k, 3), dtype=np.uint8)).save(folder / f"{j}.JPEG")
    torch.manual_seed(0)
    original = timm.create_model("resnet18", num_classes=len(WNIDS)).eval()
    weights = tmp_path / "resnet18_random.safetensors"
    save_file(original.state_dict(), weights)
    config = raw("imagenet")
    config["dataset"]["root"] = str(tmp_path / "imagenet")
    config["execution"].update(device="cpu", amp="none")  # channels_last stays on
    config["teachers"] = {"resnet18": {"model": "resnet18", "source": "pretrained", "pretrained": {
        "timm": "resnet18.tv_in1k", "file": str(weights), "sha256": sha256(weights), "min_top1": 0}}}
    config["pairs"] = [{"teacher": "resnet18", "student": "resnet18"}]
    config = validate_config(config, SCHEMA, check_data=True)
    spec = RunSpec.from_dict(Experiment(config).teacher_spec("resnet18") | {"optim": {"epochs": 1, "eval_batch_size": 4}})
    metrics = import_pretrained(spec, config["teachers"]["resnet18"]["pretrained"], tmp_path / "run")
    assert metrics["num_test"] == 6
    test_set = build_dataset("imagenet", "test", root=tmp_path / "imagenet", views=("eval",))
    expected, _ = predict(original.to(memory_format=torch.channels_last), test_set, batch_size=4,
                          device=torch.device("cpu"), channels_last=True)
    torch.testing.assert_close(read_tensors(tmp_path / "run/test_logits.safetensors")["logits"], expected,
                               rtol=0, atol=1e-5)
    assert read_json(tmp_path / "run/pretrained.json")["timm"] == "resnet18.tv_in1k"
    # the hub form (no file) would put a random head on a 1000-class tag for this 3-class folder: refused
    with pytest.raises(ValueError, match="has 1000 classes but the dataset 3"):
        import_pretrained(spec, {"timm": "resnet18.tv_in1k"}, tmp_path / "run2")
    with pytest.raises(ChecksumError):
        import_pretrained(spec, {"timm": "resnet18.tv_in1k", "file": str(weights), "sha256": "3" * 64},
                          tmp_path / "run3")
    assert not (tmp_path / "run3").exists()


def test_paper_table_names_match_the_configs():
    """Every pair of the three configs has rows in the paper's tables (so the report can compare)."""
    paper = paper_results()
    for name in ("cifar100", "imagenet"):
        config = raw(name)
        for pair in config["pairs"]:
            teacher = to_paper_model(config["teachers"][pair["teacher"]]["model"])
            rows = paper[(paper.teacher == teacher) & (paper.student == to_paper_model(pair["student"]))]
            assert len(rows) == 8, (name, pair)
    assert isinstance(paper, pd.DataFrame)
