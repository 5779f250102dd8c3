"""Bad input, provoked on purpose: each test names the mistake and checks that it fails fast (before training
where possible) with a message a user can act on. Malformed YAML, schema errors with "did you mean", truncated
dataset files and crafted pickles are covered in test_config.py, test_data.py and test_reliability.py."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lskd.data import DatasetCorruptedError, build_dataset
from lskd.engine import DataSpec, OptimSpec, RunSpec, create_model, train_one
from lskd.engine import trainer as trainer_module
from lskd.engine.io import write_json, write_tensors
from lskd.engine.pretrained import map_state_dict
from lskd.engine.trainer import OutputNotWritableError, TeacherMismatchError
from lskd.models import SMALL_STUDENT, SMALL_TEACHER
from lskd.workflow import ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


# ------------------------------------------------------------------ config: types, empty grid, duplicates, typos
def _smoke() -> dict:
    return yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())


CONFIG_MISTAKES = [
    ("temperature given as a word", lambda c: c["grid"].__setitem__("temperatures", ["two"]),
     r"grid\.temperatures\[0\]: 'two' is not of type 'number'"),
    ("seeds given as a scalar", lambda c: c["grid"].__setitem__("seeds", "0"), r"grid\.seeds: '0' is not of type 'array'"),
    ("epochs given as a word", lambda c: c["student_optim"].__setitem__("epochs", "ten"),
     r"student_optim\.epochs: 'ten' is not of type 'integer'"),
    ("fractional thread count", lambda c: c["execution"].__setitem__("threads", 1.5),
     r"execution\.threads: 1\.5 is not of type 'integer'"),
    ("empty method list", lambda c: c["grid"].__setitem__("methods", []), r"grid\.methods: \[\] should be non-empty"),
    ("empty temperature list", lambda c: c["grid"].__setitem__("temperatures", []),
     r"grid\.temperatures: \[\] should be non-empty"),
    ("no pairs", lambda c: c.__setitem__("pairs", []), r"pairs: \[\] should be non-empty"),
    ("empty grid section", lambda c: c.__setitem__("grid", None), r"grid: None is not of type 'object'"),
    ("a temperature listed twice", lambda c: c["grid"].__setitem__("temperatures", [2, 2.0]),
     r"grid\.temperatures: \[2, 2\.0\] has non-unique elements"),
    ("a pair listed twice", lambda c: c["pairs"].append(dict(c["pairs"][0])),
     r"pairs\[1\]: teacher 'cnn_w24d4' with student 'cnn_w8d3' is already pairs\[0\]"),
    ("misspelt top-level key", lambda c: c.__setitem__("datset", c.pop("dataset")),
     r"unknown key 'datset' \(did you mean 'dataset'\?\)"),
    ("misspelt nested key", lambda c: c["execution"].__setitem__("theads", 2),
     r"execution: unknown key 'theads' \(did you mean 'threads'\?\); allowed: amp, "),
    ("device named gpu", lambda c: c["execution"].__setitem__("device", "gpu"),
     r"execution\.device: 'gpu' does not match .*cpu\|cuda\|auto"),
]


@pytest.mark.parametrize("mistake,change,message", CONFIG_MISTAKES, ids=[m[0] for m in CONFIG_MISTAKES])
def test_config_mistake_is_named_before_any_job(mistake, change, message):
    config = copy.deepcopy(_smoke())
    change(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA, check_data=False)


# ------------------------------------------------------------------ teachers that do not fit
def _fake_teacher(folder: Path, *, arch: str, weights_arch: str, num_classes: int, in_chans: int = 1) -> Path:
    """A finished-looking teacher folder whose spec.json names ``arch`` and whose weights come from ``weights_arch``."""
    folder.mkdir(parents=True)
    model = create_model(weights_arch, num_classes, in_chans)
    write_tensors(folder / "model.safetensors", model.state_dict())
    spec = RunSpec(model=arch, data=DataSpec(name="digits"), optim=OptimSpec(epochs=1))
    write_json(folder / "spec.json", {"spec": spec.to_dict(), "fingerprint": spec.fingerprint(),
                                      "resolved": {"num_classes": num_classes, "in_chans": in_chans}})
    write_json(folder / "metrics.json", {})
    return folder


def _student(teacher: Path) -> RunSpec:
    return RunSpec(model=SMALL_STUDENT, data=DataSpec(name="digits", train_subset=100, test_subset=50),
                   optim=OptimSpec(epochs=1, batch_size=32), method="kd", hparams={"temperature": 4.0},
                   teacher_dir=str(teacher), threads=1, cell="kd-cell")


def _no_training(monkeypatch) -> None:
    monkeypatch.setattr(trainer_module, "_build_student", lambda *a, **k: pytest.fail("reached the students"))


def test_teacher_with_the_wrong_class_count_is_refused_before_distillation(tmp_path, monkeypatch):
    """Failure: the teacher run predicts 5 classes, the student's data has 10. Behaviour: TeacherMismatchError
    naming both counts, raised before any student is built."""
    teacher = _fake_teacher(tmp_path / "teacher", arch=SMALL_TEACHER, weights_arch=SMALL_TEACHER, num_classes=5)
    _no_training(monkeypatch)
    with pytest.raises(TeacherMismatchError, match=r"predicts 5 classes from 1-channel images, but the student's "
                                                   r"data has 10 classes and 1 channels"):
        train_one(_student(teacher), tmp_path / "run", progress=False)


def test_teacher_weights_of_another_architecture_are_refused_before_distillation(tmp_path, monkeypatch):
    """Failure: the teacher folder's model.safetensors holds weights of another architecture than its spec.json
    names. Behaviour: TeacherMismatchError naming the folder and torch's first mismatch lines."""
    teacher = _fake_teacher(tmp_path / "teacher", arch=SMALL_TEACHER, weights_arch=SMALL_STUDENT, num_classes=10)
    _no_training(monkeypatch)
    with pytest.raises(TeacherMismatchError, match=r"model\.safetensors does not fit the architecture its spec\.json "
                                                   r"names: Error\(s\) in loading state_dict"):
        train_one(_student(teacher), tmp_path / "run", progress=False)


def test_published_teacher_weights_with_the_wrong_class_count_are_refused():
    """Failure: weights for 100 classes imported for a 10-class dataset. Behaviour: ValueError listing the shape
    mismatches of the classifier (the wrong-architecture case is in test_tracks.py)."""
    state = create_model("resnet8x4", 100, 3).state_dict()
    with pytest.raises(ValueError, match=r"does not fit model 'resnet8x4' .*shape mismatches: fc\.weight: "
                                         r"w\.pth \(100, 256\) vs model \(10, 256\)"):
        map_state_dict(state, create_model("resnet8x4", 10, 3), "resnet8x4", source="w.pth")


# ------------------------------------------------------------------ images of the wrong mode, size or content
def _imagenet_standin(root: Path, extra: dict[str, Image.Image | bytes]) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / "ok.JPEG")
    for name, content in extra.items():
        path = root / "val" / "n01443537" / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content.save(path)
    return root


def test_images_of_other_modes_and_sizes_are_converted(tmp_path):
    """Failure: an ImageFolder holding grayscale, RGBA, palette and 1x1-pixel images. Behaviour: accepted as
    documented: each becomes a 3 x 224 x 224 RGB tensor (like torchvision's ImageFolder)."""
    extra = {"gray.png": Image.new("L", (30, 20), 128), "rgba.png": Image.new("RGBA", (20, 30), (1, 2, 3, 4)),
             "palette.png": Image.new("P", (25, 25)), "tiny.png": Image.new("RGB", (1, 1))}
    test = build_dataset("imagenet", "test", root=_imagenet_standin(tmp_path, extra))
    assert len(test) == 6
    for i in range(len(test)):
        x, _, _ = test[i]
        assert x.shape == (3, 224, 224) and torch.isfinite(x).all()


@pytest.mark.parametrize("name,content,message", [
    ("depth16.png", Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)), r"image mode 'I;16' is not 8-bit"),
    ("notanimage.JPEG", b"<html>404 not found</html>", r"not a readable image \(cannot identify image file"),
    ("truncated.JPEG", "truncate", r"not a readable image \(image file is truncated"),
], ids=["16-bit image", "HTML page saved as .JPEG", "truncated JPEG"])
def test_unreadable_or_16bit_image_names_the_file(tmp_path, name, content, message):
    """Failure: one image in an ImageFolder is 16-bit, not an image at all, or truncated. Behaviour:
    DatasetCorruptedError naming the file and what to do, instead of a PIL traceback or silently clipped pixels."""
    if content == "truncate":
        buf = tmp_path / "full.JPEG"
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf)
        content = buf.read_bytes()[: buf.stat().st_size // 2]
    root = _imagenet_standin(tmp_path / "data", {name: content})
    test = build_dataset("imagenet", "test", root=root)
    index = next(i for i in range(len(test)) if test._load_image.paths[test._source_index[i]].endswith(name))
    with pytest.raises(DatasetCorruptedError, match=message) as info:
        test[index]
    assert name in str(info.value)


def test_cifar_file_with_images_of_the_wrong_size_is_refused(tmp_path):
    """Failure: a CIFAR-100 stand-in whose rows hold 28x28 instead of 32x32 colour images. Behaviour:
    DatasetCorruptedError stating the unexpected shape."""
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    labels = list(range(100))
    for split in ("train", "test"):
        with open(base / split, "wb") as fh:
            pickle.dump({"data": np.zeros((100, 3 * 28 * 28), np.uint8), "fine_labels": labels}, fh)
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [f"c{k}" for k in range(100)]}, fh)
    with pytest.raises(DatasetCorruptedError, match=r"unexpected data \(100, 2352\)"):
        build_dataset("cifar100", "test", root=tmp_path)


# ------------------------------------------------------------------ output folder and device
def _plain_spec() -> RunSpec:
    return RunSpec(model=SMALL_STUDENT, data=DataSpec(name="digits", train_subset=100, test_subset=50),
                   optim=OptimSpec(epochs=1, batch_size=32), threads=1)


def test_output_under_a_file_fails_before_data_is_loaded(tmp_path, monkeypatch):
    """Failure: the output folder cannot be created (its parent is a file). Behaviour: OutputNotWritableError
    naming the folder, before any dataset is built."""
    (tmp_path / "results").write_text("not a folder")
    monkeypatch.setattr(trainer_module, "build_dataset", lambda *a, **k: pytest.fail("loaded data first"))
    with pytest.raises(OutputNotWritableError, match=r"output folder .*results/run is not writable \(Not a directory\)"):
        train_one(_plain_spec(), tmp_path / "results" / "run", progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_output_folder_fails_before_data_is_loaded(tmp_path, monkeypatch):
    """Failure: the output folder is read-only. Behaviour: OutputNotWritableError (Permission denied), no data loaded."""
    out = tmp_path / "run"
    out.mkdir()
    out.chmod(0o555)
    monkeypatch.setattr(trainer_module, "build_dataset", lambda *a, **k: pytest.fail("loaded data first"))
    try:
        with pytest.raises(OutputNotWritableError, match="Permission denied"):
            train_one(_plain_spec(), out, progress=False)
    finally:
        out.chmod(0o755)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.slow
def test_gpu_requested_without_a_gpu_is_one_clear_line(tmp_path):
    """Failure: `lskd distill --device cuda` on a machine without a GPU. Behaviour: exit status 1 and a one-line
    message suggesting `device: auto` or `cpu`, no traceback, nothing trained."""
    out = subprocess.run([sys.executable, "-m", "lskd.cli", "train-teacher", "--model", SMALL_STUDENT, "--dataset",
                          "digits", "--epochs", "1", "--device", "cuda", "--out", str(tmp_path / "run")],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "lskd train-teacher: error: device 'cuda' requested but no CUDA GPU is visible" in out.stderr
    assert "use device: auto (falls back to the CPU) or cpu" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_device_auto_falls_back_to_the_cpu():
    """Failure: a config written for GPUs (`device: auto`) runs on a CPU-only machine. Behaviour: it runs on the CPU."""
    assert trainer_module.resolve_device("auto") == torch.device("cpu")


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_cifar_pickle_is_refused_without_running_code(tmp_path):
    """Provokes: a user-supplied cifar-100-python/train that would run code when unpickled."""
    from lskd.data.cifar100 import _unpickle

    marker = tmp_path / "pwned"
    path = tmp_path / "train"
    path.write_bytes(pickle.dumps({"data": _RunsCode(marker), "fine_labels": [0]}))
    with pytest.raises(DatasetCorruptedError, match="refusing to load pathlib"):
        _unpickle(path)
    assert not marker.exists()
