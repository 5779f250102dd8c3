"""`lskd primer` and the primer plotting function shared with the report's primer figure."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from lskd.analysis import collect_runs
from lskd.engine import DataSpec, OptimSpec, RunSpec, train_one
from lskd.engine.io import read_json, write_json
from lskd.report import figures_primer
from lskd.report.figures_common import load_results
from lskd.report.figures_primer import TEMPERATURES, draw_primer, logit_primer

LOGITS = "4.2,1.8,0.5,-0.3,2.7,3.1,0.2,-1.5,1.1,2.2"
VALUES = np.array([float(x) for x in LOGITS.split(",")])
PNG = b"\x89PNG\r\n\x1a\n"


def _lskd(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lskd", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "lskd.cli"]
    return subprocess.run([*cmd, "primer", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A tiny teacher trained on scikit-learn's digits, relabelled as Fashion-MNIST for its class names."""
    out = tmp_path_factory.mktemp("teacher")
    spec = RunSpec(model="cnn_w24d4", data=DataSpec(name="digits", train_subset=300, test_subset=100),
                   optim=OptimSpec(epochs=1, batch_size=32, lr=0.05), threads=1)
    train_one(spec, out, progress=False)
    return out


@pytest.mark.slow
def test_primer_command_writes_a_png(tmp_path):
    out = _lskd("--logits", LOGITS, "-o", "primer.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "primer.png").read_bytes()[:8] == PNG and (tmp_path / "primer.png").stat().st_size > 20_000
    top = {t: special.softmax(VALUES / t).max() for t in TEMPERATURES}
    assert f"max probability {top[0.5]:.3f} at T=0.5" in out.stdout and f"{top[5.0]:.3f} at T=5" in out.stdout
    assert "top class '0'" in out.stdout and "after z-score" not in out.stdout


@pytest.mark.slow
def test_primer_command_options(tmp_path):
    out = _lskd(f"--logits={LOGITS}", "--zscore", "--confidence", "--temperatures", "1,3,10",
                "--classes", ",".join(f"c{i}" for i in range(10)), "--std", "population", "-o", "sub/z.svg",
                cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "sub/z.svg").read_text().lstrip().startswith("<?xml")
    assert "at T=10" in out.stdout and "after z-score:" in out.stdout and "at τ=3" in out.stdout
    assert "top class 'c0'" in out.stdout
    bad = _lskd("--logits", "1,2,3", "--classes", "a,b", cwd=tmp_path)
    assert bad.returncode != 0 and "2 class names for 3 logits" in bad.stderr
    bad = _lskd("--logits", "1,2,3", "--temperatures", "0,1", cwd=tmp_path)
    assert bad.returncode != 0 and "temperatures must be > 0" in bad.stderr
    bad = _lskd("--logits", "1,x", cwd=tmp_path)
    assert bad.returncode != 0 and "expected numbers separated by commas" in bad.stderr


def test_draw_primer_panels_legend_and_zscore():
    plain = draw_primer(VALUES)
    assert len(plain.figure.axes) == 2 and plain.top_zscore is None and plain.zscored is None
    labels = [t.get_text() for t in plain.figure.axes[1].get_legend().get_texts()]
    assert labels == ["T = 0.5", "T = 1", "T = 2", "T = 5"]
    full = draw_primer(VALUES, zscore=True, confidence=True, temperatures=(1, 4), std="population")
    assert len(full.figure.axes) == 4
    labels = [t.get_text() for t in full.figure.axes[3].get_legend().get_texts()]
    zs = (VALUES - VALUES.mean()) / VALUES.std()  # population std, as Algorithm 1
    np.testing.assert_allclose(full.zscored, zs, atol=1e-5)
    assert labels == [f"τ = {t:g} (max p {special.softmax(zs / t).max():.2f})" for t in (1, 4)]
    assert full.top[1.0] == pytest.approx(special.softmax(VALUES).max())
    many = draw_primer(np.arange(30.0), max_classes=10, true_class=29)
    assert list(many.shown) == list(range(29, 19, -1))  # the ten largest logits, largest first
    with pytest.raises(ValueError, match="two or more finite logits"):
        draw_primer([1.0])


@pytest.mark.slow
def test_primer_from_a_trained_teacher_with_class_names(teacher, tmp_path):
    record = read_json(teacher / "spec.json")
    record["spec"]["data"]["name"] = "fashion_mnist"  # its 10 real class names (the logits have 10 classes)
    run = tmp_path / "teacher"
    shutil.copytree(teacher, run)
    write_json(run / "spec.json", record)
    out = _lskd("--run", str(run), "--sample", "3", "--zscore", "--confidence", "-o", "t.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    first = out.stdout.splitlines()[0]
    assert first.startswith("cnn_w24d4, fashion_mnist test sample #3 (true class '") and any(n in first for n in names)
    auto = _lskd("--run", str(run), "-o", "auto.png", cwd=tmp_path)
    assert auto.returncode == 0 and "test sample #" in auto.stdout
    bad = _lskd("--run", str(run), "--sample", "100000", cwd=tmp_path)
    assert bad.returncode != 0 and "out of range" in bad.stderr


def test_report_primer_uses_the_same_function(teacher, tmp_path, monkeypatch):
    """The report's logit_primer figure is drawn by draw_primer (spied), on the teacher of the first pair."""
    student = tmp_path / "runs/pair/kd/none/T4_w0.9/seed0"
    spec = RunSpec(model="cnn_w8d3", data=DataSpec(name="digits", train_subset=300, test_subset=100),
                   optim=OptimSpec(epochs=1, batch_size=32, lr=0.05), method="kd", teacher_dir=str(teacher),
                   hparams={"temperature": 4.0}, threads=1)
    train_one(spec, student, progress=False)
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return draw_primer(*args, **kwargs)

    monkeypatch.setattr(figures_primer, "draw_primer", spy)
    (tmp_path / "tables").mkdir()
    collect_runs([student]).to_csv(tmp_path / "tables/runs.csv", index=False)  # the collect step's table
    res = load_results(tmp_path, {"grid": {"methods": ["kd"]}})
    figure = logit_primer(res, tmp_path)
    assert figure is not None and figure.path.read_bytes()[:8] == PNG
    assert len(calls) == 1 and calls[0]["zscore"] and calls[0]["confidence"]
    assert "at T=0.5" in figure.caption and "τ=5" in figure.caption
