"""Analysis: per-sample logit statistics, run collection, seed statistics, result tables, paper comparison."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import special
from scipy import stats as sps

from lskd.analysis import (
    RUN_COLUMNS,
    collect_runs,
    fmt_mean_std,
    grid_table,
    headline_table,
    logit_summary_table,
    mean_std_n,
    paired_bootstrap_ci,
    paper_ablation_comparison,
    paper_comparison,
    paper_main_rows,
    per_sample_stats,
    read_run_stats,
    rowwise_kendall,
    run_logit_stats,
    run_summary,
    summarize_stats,
    to_paper_model,
    write_run_stats,
)
from lskd.engine.io import write_json, write_tensors


# ------------------------------------------------------------------ fixtures
def _logits(n: int = 12, k: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = (rng.normal(size=(n, k)) * 2.5).astype(np.float32)
    z = (0.4 * v + rng.normal(size=(n, k))).astype(np.float32)
    z[0, :3] = z[0, 3]  # ties in the student
    v[1] = np.round(v[1])  # (possible) ties in the teacher
    y = rng.integers(0, k, size=n)
    return z, v, y


def _kl(p_logits: np.ndarray, q_logits: np.ndarray) -> np.ndarray:
    """KL(softmax(p) ‖ softmax(q)) per row, written out."""
    p = np.exp(p_logits - p_logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    q = np.exp(q_logits - q_logits.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    return (p * (np.log(p) - np.log(q))).sum(1)


def _zscore(x: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    return (x - x.mean(1, keepdims=True)) / (x.std(1, ddof=1, keepdims=True) + eps)


# ------------------------------------------------------------------ per-sample statistics
def test_basic_columns_match_numpy_and_scipy():
    z, _, y = _logits()
    z64, T = z.astype(np.float64), 3.0
    df = per_sample_stats(z, y, T)
    np.testing.assert_allclose(df["mean"], z64.mean(1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(df["std"], np.std(z64, axis=1, ddof=1), rtol=1e-6)
    np.testing.assert_allclose(df["range"], np.ptp(z64, axis=1), rtol=1e-6)
    np.testing.assert_allclose(df["max_logit"], z64.max(1), rtol=1e-6)
    srt = np.sort(z64, axis=1)
    np.testing.assert_allclose(df["margin"], srt[:, -1] - srt[:, -2], atol=1e-6)
    assert df["margin"].iloc[0] >= 0
    for suffix, t in (("t1", 1.0), ("T", T)):
        p = special.softmax(z64 / t, axis=1)
        np.testing.assert_allclose(df[f"entropy_{suffix}"], sps.entropy(p, axis=1), rtol=1e-5)
        np.testing.assert_allclose(df[f"confidence_{suffix}"], p.max(1), rtol=1e-5)
    np.testing.assert_array_equal(df["pred"], z64.argmax(1))
    np.testing.assert_array_equal(df["correct"], z64.argmax(1) == y)
    assert df["std"].dtype == np.float32 and df["pred"].dtype == np.int64 and df["correct"].dtype == bool
    assert "kl_T" not in df and df.attrs["temperature"] == T


def test_teacher_columns_match_scipy_per_row():
    z, v, y = _logits()
    z64, v64, T = z.astype(np.float64), v.astype(np.float64), 2.0
    df = per_sample_stats(torch.from_numpy(z), torch.from_numpy(y), T, torch.from_numpy(v))
    np.testing.assert_allclose(df["kl_T"], T**2 * _kl(v64 / T, z64 / T), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(df["kl_T_zscore"], T**2 * _kl(_zscore(v64) / T, _zscore(z64) / T), rtol=1e-5, atol=1e-7)
    for col, fn in (("pearson", sps.pearsonr), ("spearman", sps.spearmanr), ("kendall", sps.kendalltau)):
        expected = [fn(z64[i], v64[i]).statistic for i in range(len(z))]
        np.testing.assert_allclose(df[col], expected, rtol=1e-5, atol=1e-6, err_msg=col)
    np.testing.assert_array_equal(df["top1_agree"], z64.argmax(1) == v64.argmax(1))
    np.testing.assert_allclose(df["shift"], z64.mean(1) - v64.mean(1), atol=1e-6)
    np.testing.assert_allclose(df["std_ratio"], z64.std(1, ddof=1) / v64.std(1, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(df["teacher_std"], v64.std(1, ddof=1), rtol=1e-6)
    np.testing.assert_array_equal(df["teacher_correct"], v64.argmax(1) == y)


def test_kendall_with_ties_and_scipy_path_for_many_classes():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, size=(6, 9)).astype(np.float64)  # many ties on both sides
    b = rng.integers(0, 4, size=(6, 9)).astype(np.float64)
    expected = [sps.kendalltau(a[i], b[i]).statistic for i in range(6)]
    np.testing.assert_allclose(rowwise_kendall(a, b), expected, atol=1e-12)
    a, b = rng.normal(size=(3, 150)), rng.normal(size=(3, 150))  # K > 128: scipy per row
    expected = [sps.kendalltau(a[i], b[i]).statistic for i in range(3)]
    np.testing.assert_allclose(rowwise_kendall(a, b), expected, atol=1e-12)
    np.testing.assert_allclose(rowwise_kendall(a, b, exact_max_k=200), expected, atol=1e-12)


@pytest.mark.parametrize("a,b", [(0.5, 1.5), (2.0, -3.0), (1.0, 0.0)])
def test_affine_student_shift_std_ratio_and_invariance(a, b):
    rng = np.random.default_rng(2)
    v = rng.normal(size=(20, 10)) * 3
    z = a * v + b
    df = per_sample_stats(z, np.zeros(20, dtype=np.int64), 2.0, v)
    np.testing.assert_allclose(df["std_ratio"], a, rtol=1e-5)
    np.testing.assert_allclose(df["shift"], z.mean(1) - v.mean(1), atol=1e-5)
    np.testing.assert_allclose(df[["pearson", "spearman", "kendall"]].to_numpy(), 1.0, atol=1e-6)
    assert df["top1_agree"].all()
    np.testing.assert_allclose(df["kl_T_zscore"], 0.0, atol=1e-5)
    if a != 1.0:
        assert (df["kl_T"] > 1e-3).all()  # the raw KL sees the magnitude mismatch, the z-scored one does not


def test_summarize_stats_and_storage_roundtrip(tmp_path):
    z, v, y = _logits(n=30)
    df = per_sample_stats(z, y, 4.0, v)
    s = summarize_stats(df)
    assert s["n"] == 30 and s["stats_temperature"] == 4.0
    assert s["accuracy"] == pytest.approx(100 * np.mean(z.argmax(1) == y))
    assert s["std_mean"] == pytest.approx(df["std"].astype(float).mean())
    assert s["kendall_median"] == pytest.approx(df["kendall"].astype(float).median())
    assert s["shift_abs_mean"] == pytest.approx(df["shift"].abs().astype(float).mean())
    assert s["std_ratio_of_means"] == pytest.approx(s["std_mean"] / s["teacher_std_mean"])
    assert s["top1_agree"] == pytest.approx(100 * np.mean(z.argmax(1) == v.argmax(1)))
    from lskd.analysis import write_stats_table

    path = write_stats_table(df, tmp_path / "stats.safetensors")
    back = read_run_stats(path)
    pd.testing.assert_frame_equal(back, df)
    assert back.attrs["temperature"] == 4.0


# ------------------------------------------------------------------ run folders
def _make_run(root: Path, name: str, *, model: str, method: str, seed: int = 0, hparams: dict | None = None,
              teacher_dir: Path | None = None, labels: dict | None = None, logits: np.ndarray, targets: np.ndarray,
              last: float = 70.0, best: float = 71.0, history_extra: dict | None = None) -> Path:
    from lskd.losses import method_hparams

    d = root / name
    d.mkdir(parents=True)
    resolved = {**method_hparams(method), **(hparams or {})}
    spec = {"model": model, "data": {"name": "cifar100"}, "method": method, "hparams": hparams or {},
            "teacher_dir": str(teacher_dir) if teacher_dir else None, "seed": seed, "cell": name,
            "labels": labels or {}}
    write_json(d / "spec.json", {"spec": spec, "fingerprint": "f", "git_commit": "abc123",
                                 "resolved": {"num_classes": logits.shape[1], "in_chans": 3, "hparams": resolved,
                                              "num_params": 1000}})
    block = lambda top1: {"epoch": 2, "top1": top1, "top5": 90.0, "nll": 1.0, "ece": 5.0}  # noqa: E731
    write_json(d / "metrics.json", {"last": block(last), "best": {**block(best), "epoch": 1},
                                    "num_test": len(targets)})
    write_json(d / "timing.json", {"wall_seconds": 12.5, "epochs": 2})
    hist = pd.DataFrame({"epoch": [1, 2], "lr": [0.05, 0.05], "loss_ce": [1.0, 0.9], "test_top1": [best, last],
                         **(history_extra or {})})
    hist.to_csv(d / "history.csv", index=False)
    write_tensors(d / "test_logits.safetensors",
                  {"logits": torch.from_numpy(logits.astype(np.float32)), "targets": torch.from_numpy(targets)})
    return d


@pytest.fixture()
def run_tree(tmp_path):
    rng = np.random.default_rng(3)
    v = rng.normal(size=(40, 10)) * 3
    y = rng.integers(0, 10, size=40)
    teacher = _make_run(tmp_path, "teacher", model="resnet32x4", method="ce", logits=v, targets=y, last=79.0)
    baseline = _make_run(tmp_path, "baseline", model="resnet8x4", method="ce", logits=v + 1, targets=y, last=72.0)
    kd = _make_run(tmp_path, "kd", model="resnet8x4", method="kd", teacher_dir=teacher, logits=0.5 * v + 1, targets=y,
                   hparams={"temperature": 2.0, "transform": "zscore", "kd_weight": 9.0}, last=76.0, best=76.5)
    ctkd = _make_run(tmp_path, "ctkd", model="resnet8x4", method="ctkd", teacher_dir=teacher, logits=v, targets=y,
                     history_extra={"temperature": [15.0, 7.5]}, seed=1)
    return {"teacher": teacher, "baseline": baseline, "kd": kd, "ctkd": ctkd, "v": v, "y": y}


def test_collect_runs_infers_roles_and_fields(run_tree):
    dirs = [run_tree[k] for k in ("kd", "ctkd", "baseline", "teacher")]
    runs = collect_runs(dirs)
    assert list(runs.columns) == list(RUN_COLUMNS)
    assert list(runs["role"]) == ["teacher", "baseline", "distill", "distill"]
    assert list(runs["method"]) == ["ce", "ce", "ctkd", "kd"]  # sorted deterministically
    kd = runs[runs["method"] == "kd"].iloc[0]
    assert (kd["teacher"], kd["student"], kd["transform"]) == ("resnet32x4", "resnet8x4", "zscore")
    assert (kd["temperature"], kd["kd_weight"], kd["effective_temperature"]) == (2.0, 9.0, 2.0)
    assert (kd["last_top1"], kd["best_top1"], kd["best_epoch"], kd["epochs"]) == (76.0, 76.5, 1, 2)
    assert kd["wall_seconds"] == 12.5 and kd["num_params"] == 1000 and kd["git_commit"] == "abc123"
    ctkd = runs[runs["method"] == "ctkd"].iloc[0]
    assert math.isnan(ctkd["temperature"]) and ctkd["effective_temperature"] == 7.5
    t = runs[runs["role"] == "teacher"].iloc[0]
    assert t["teacher"] == "resnet32x4" and pd.isna(t["student"])
    # without the distilled runs nothing names the teacher: a CE run without labels is then a baseline
    assert set(collect_runs([run_tree["teacher"]])["role"]) == {"baseline"}
    pd.testing.assert_frame_equal(collect_runs(dirs[::-1]), runs)  # order of the input does not matter


def test_labels_take_precedence(tmp_path):
    v = np.random.default_rng(0).normal(size=(5, 4))
    y = np.zeros(5, dtype=np.int64)
    d = _make_run(tmp_path, "t", model="resnet32x4", method="ce", logits=v, targets=y,
                  labels={"role": "teacher", "dataset": "cifar100", "teacher": "resnet32x4", "student": None,
                          "method": "ce", "transform": None, "temperature": None, "kd_weight": None, "seed": 7})
    row = collect_runs([d]).iloc[0]
    assert row["role"] == "teacher" and row["seed"] == 7


def test_workflow_labels_alias_teacher_and_relative_teacher_dir(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    v, y = rng.normal(size=(8, 5)), rng.integers(0, 5, size=8)
    root = tmp_path / "results" / "runs"
    teacher = _make_run(root, "teachers/r32x4", model="resnet32x4", method="ce", logits=v, targets=y,
                        labels={"role": "teacher", "dataset": "cifar100", "teacher": "r32x4", "seed": 0})
    labels = {"role": "distill", "dataset": "cifar100", "teacher": "r32x4", "student": "resnet8x4", "method": "kd",
              "transform": "zscore", "temperature": 2.0, "kd_weight": 9.0, "seed": 0}
    kd = _make_run(root, "kd/seed0", model="resnet8x4", method="kd", logits=v, targets=y, labels=labels,
                   teacher_dir=Path("results/runs/teachers/r32x4"), last=76.0, best=76.62,
                   hparams={"temperature": 2.0, "transform": "zscore", "kd_weight": 9.0})
    monkeypatch.chdir(tmp_path / "results")  # the relative teacher_dir is found from the run's parents
    runs = collect_runs([kd, teacher])
    assert list(runs["teacher"]) == ["r32x4", "r32x4"] and list(runs["teacher_model"]) == ["resnet32x4"] * 2
    assert runs["teacher_dir"].iloc[1] == str(teacher.resolve())
    cmp_ = paper_comparison(runs)
    assert cmp_["paper_top1"].tolist() == [76.62] and cmp_["diff_best_minus_paper"].iloc[0] == pytest.approx(0.0)
    assert headline_table(runs)["teacher_top1_mean"].iloc[0] == 70.0


def test_nan_metrics_raise(tmp_path):
    v = np.random.default_rng(0).normal(size=(5, 4))
    d = _make_run(tmp_path, "bad", model="resnet8x4", method="ce", logits=v, targets=np.zeros(5, dtype=np.int64))
    write_json(d / "metrics.json", {"last": {"epoch": 2, "top1": 50.0, "top5": 90.0, "nll": 1.0, "ece": 5.0},
                                    "best": {"epoch": 1, "top1": 50.0, "top5": 90.0, "nll": 1.0, "ece": 5.0},
                                    "num_test": 5})
    (d / "metrics.json").write_text((d / "metrics.json").read_text().replace('"nll": 1.0', '"nll": NaN', 1))
    with pytest.raises(ValueError, match="non-finite"):
        collect_runs([d])
    (d / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="not finished"):
        collect_runs([d])


def test_run_logit_stats_temperatures_and_teacher(run_tree, tmp_path):
    v = run_tree["v"]
    kd = run_logit_stats(run_tree["kd"])
    assert kd.attrs["temperature"] == 2.0
    np.testing.assert_allclose(kd["std_ratio"], 0.5, rtol=1e-5)
    np.testing.assert_allclose(kd["shift"], (0.5 * v + 1).mean(1) - v.astype(np.float32).mean(1), atol=1e-5)
    np.testing.assert_allclose(kd["kl_T_zscore"], 0.0, atol=1e-5)
    assert run_logit_stats(run_tree["ctkd"]).attrs["temperature"] == 7.5
    base = run_logit_stats(run_tree["baseline"])
    assert base.attrs["temperature"] == 1.0 and "kl_T" not in base
    path = write_run_stats(run_tree["kd"], tmp_path / "out" / "kd.safetensors")
    pd.testing.assert_frame_equal(read_run_stats(path), kd)
    row = run_summary(run_tree["kd"], path)
    assert row["role"] == "distill" and row["std_ratio_mean"] == pytest.approx(0.5, rel=1e-5)


def test_teacher_with_other_targets_raises(run_tree):
    t = run_tree["teacher"]
    write_tensors(t / "test_logits.safetensors", {"logits": torch.zeros(40, 10),
                                                  "targets": torch.from_numpy((run_tree["y"] + 1) % 10)})
    with pytest.raises(ValueError, match="targets differ"):
        run_logit_stats(run_tree["kd"])


# ------------------------------------------------------------------ seed statistics
def test_mean_std_n_and_format():
    m, s, n = mean_std_n([76.4, 76.9, 76.6, 76.6])
    assert (m, n) == (pytest.approx(76.625), 4) and s == pytest.approx(np.std([76.4, 76.9, 76.6, 76.6], ddof=1))
    assert mean_std_n([70.0]) == (70.0, 0.0, 1)
    assert fmt_mean_std(76.62, 0.2149, 4) == "76.62 ± 0.21 (n=4)"
    assert fmt_mean_std(70.0, 0.0, 1) == "70.00 (n=1)"
    with pytest.raises(ValueError):
        mean_std_n([1.0, float("nan")])
    with pytest.raises(ValueError):
        mean_std_n([])


def test_paired_bootstrap_ci():
    diffs = np.random.default_rng(0).normal(1.0, 0.5, size=8)
    ci = paired_bootstrap_ci(diffs, n_boot=2000, seed=0)
    assert ci.lo <= ci.mean <= ci.hi and ci.mean == pytest.approx(diffs.mean()) and ci.n == 8 and not ci.degenerate
    assert paired_bootstrap_ci(diffs, n_boot=2000, seed=0) == ci
    assert paired_bootstrap_ci(diffs, n_boot=2000, seed=1) != ci
    one = paired_bootstrap_ci([0.7])
    assert (one.mean, one.lo, one.hi, one.degenerate) == (0.7, 0.7, 0.7, True)
    wider = paired_bootstrap_ci(diffs, n_boot=2000, seed=0, level=0.99)
    assert wider.lo <= ci.lo and wider.hi >= ci.hi


# ------------------------------------------------------------------ tables
def _row(role, method, transform, temperature, kd_weight, seed, last, best, teacher="resnet32x4",
         student="resnet8x4", ce_weight=0.1):
    return {"run_dir": f"/r/{role}-{method}-{transform}-{temperature}-{kd_weight}-{seed}", "role": role,
            "dataset": "cifar100", "teacher": teacher, "student": student,
            "model": student if role != "teacher" else teacher, "method": method, "transform": transform,
            "temperature": temperature, "kd_weight": kd_weight, "ce_weight": ce_weight,
            "effective_temperature": temperature if temperature is not None else 1.0, "seed": seed,
            "last_top1": last, "best_top1": best}


@pytest.fixture()
def synthetic_runs() -> pd.DataFrame:
    nan = float("nan")
    rows = [
        _row("teacher", "ce", None, nan, nan, 0, 79.0, 79.5, student=None),
        _row("baseline", "ce", None, nan, nan, 0, 72.0, 72.5),
        _row("baseline", "ce", None, nan, nan, 1, 73.0, 73.5),
        # raw KD: T=4 is the best setting (mean 73.5) over T=2 (mean 72.0)
        _row("distill", "kd", "none", 4.0, 0.9, 0, 73.0, 73.5),
        _row("distill", "kd", "none", 4.0, 0.9, 1, 74.0, 74.5),
        _row("distill", "kd", "none", 2.0, 0.9, 0, 72.0, 72.0),
        _row("distill", "kd", "none", 2.0, 0.9, 1, 72.0, 72.0),
        # z-score KD: kd_weight 9 is best (mean 76.75) over 3 (mean 75.0)
        _row("distill", "kd", "zscore", 2.0, 9.0, 1, 77.5, 77.9),
        _row("distill", "kd", "zscore", 2.0, 9.0, 0, 76.0, 76.4),
        _row("distill", "kd", "zscore", 2.0, 3.0, 0, 75.0, 75.0),
        _row("distill", "kd", "zscore", 2.0, 3.0, 1, 75.0, 75.0),
    ]
    return pd.DataFrame(rows).astype({"temperature": float, "kd_weight": float})


def test_headline_table_selection_means_and_paired_difference(synthetic_runs):
    h = headline_table(synthetic_runs)
    assert list(h["transform"]) == ["none", "zscore"]
    none, z = h.iloc[0], h.iloc[1]
    assert (none["temperature"], none["kd_weight"], none["n_settings"]) == (4.0, 0.9, 2)
    assert (z["temperature"], z["kd_weight"]) == (2.0, 9.0)
    assert none["last_top1_mean"] == pytest.approx(73.5) and none["last_top1_std"] == pytest.approx(math.sqrt(0.5))
    assert none["n"] == 2 and none["last_top1"] == "73.50 ± 0.71 (n=2)"
    assert z["last_top1_mean"] == pytest.approx(76.75) and z["best_top1_mean"] == pytest.approx(77.15)
    # paired by seed: seed 0: 76.0 - 73.0 = 3.0, seed 1: 77.5 - 74.0 = 3.5
    assert z["diff_last_mean"] == pytest.approx(3.25) and z["diff_n"] == 2
    half = 12.7062047361747 * 0.25  # Student t, 1 df, 97.5% quantile × s/√2 (s = 0.5/√2)
    assert (z["diff_last_lo"], z["diff_last_hi"]) == (pytest.approx(3.25 - half), pytest.approx(3.25 + half))
    assert z["diff_best_mean"] == pytest.approx(((76.4 - 73.5) + (77.9 - 74.5)) / 2)
    assert z["diff_last"] == "+3.25 [+0.07, +6.43]"
    assert z["verdict"] == "descriptive" and pd.isna(z["p_zero"]) and pd.isna(z["p_verdict_holm"])
    assert z["delta"] == 0.5 and none["verdict"] == ""
    assert pd.isna(none["diff_last_mean"])
    assert "test set" in z["selection"]
    assert z["teacher_top1_mean"] == 79.0 and z["teacher_top1_n"] == 1
    assert z["baseline_last_top1_mean"] == pytest.approx(72.5) and z["baseline_best_top1_mean"] == pytest.approx(73.0)
    pd.testing.assert_frame_equal(headline_table(synthetic_runs.iloc[::-1]), h)


def test_grid_table(synthetic_runs):
    g = grid_table(synthetic_runs)
    assert len(g) == 4 and (g["n"] == 2).all()
    assert list(zip(g["transform"], g["temperature"], g["kd_weight"])) == [
        ("none", 2.0, 0.9), ("none", 4.0, 0.9), ("zscore", 2.0, 3.0), ("zscore", 2.0, 9.0)]
    assert list(g["selected"]) == [False, True, False, True]
    assert list(g["last_top1_mean"]) == pytest.approx([72.0, 73.5, 75.0, 76.75])
    assert g["last_top1_std"].iloc[0] == 0.0


def test_duplicate_seeds_in_a_setting_raise(synthetic_runs):
    dup = pd.concat([synthetic_runs, synthetic_runs.iloc[[3]].assign(run_dir="/r/other")], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate seeds"):
        headline_table(dup)


def test_logit_summary_table_run_and_setting():
    base = {"dataset": "cifar100", "teacher": "resnet32x4", "student": "resnet8x4", "method": "kd",
            "transform": "zscore", "temperature": 2.0, "kd_weight": 9.0, "last_ece": 3.0}
    rows = [{**base, "seed": s, "run_dir": f"/r/{s}", "std_mean": 2.0 + s, "teacher_std_mean": 4.0,
             "kl_T_mean": 0.5, "kendall_mean": 0.8 + 0.1 * s} for s in (0, 1)]
    rows.append({**base, "seed": 0, "run_dir": "/r/ce", "std_mean": 1.0, "kl_T_mean": None})  # no teacher: dropped
    per_run = logit_summary_table(rows)
    assert len(per_run) == 2 and list(per_run["student_std"]) == [2.0, 3.0] and "ece" in per_run
    agg = logit_summary_table(rows, level="setting")
    assert len(agg) == 1 and agg["n"].iloc[0] == 2
    assert agg["student_std_mean"].iloc[0] == pytest.approx(2.5)
    assert agg["kendall_std"].iloc[0] == pytest.approx(np.std([0.8, 0.9], ddof=1))


# ------------------------------------------------------------------ paper
def test_paper_data_and_names():
    rows = paper_main_rows()
    assert {"paper Table 2 (same architecture style)", "paper Table 5"} <= set(rows["source"])
    hit = rows[(rows.teacher == "resnet32x4") & (rows.student == "resnet8x4") & (rows.method == "kd")]
    assert dict(zip(hit["transform"], hit["top1"])) == {"none": 73.33, "zscore": 76.62}
    assert to_paper_model("cifar_vgg13") == "vgg13" and to_paper_model("resnet34.tv_in1k") == "resnet34"


def test_paper_comparison_matches_and_labels_sources(synthetic_runs):
    cmp_ = paper_comparison(synthetic_runs)
    assert list(cmp_["transform"]) == ["none", "zscore"]
    z = cmp_.iloc[1]
    assert z["paper_top1"] == 76.62 and z["paper_source"].startswith("paper Table 2")
    assert z["ours_source"] == "this run" and "best test accuracy" in z["paper_protocol"]
    assert z["ours_best_top1_mean"] == pytest.approx(77.15)
    assert z["diff_best_minus_paper"] == pytest.approx(77.15 - 76.62)
    assert z["diff_last_minus_paper"] == pytest.approx(76.75 - 76.62)
    # no matching pair: the paper's numbers as a labelled context table
    other = synthetic_runs.assign(student="wrn_16_2", teacher="vgg8")
    ctx = paper_comparison(other)
    assert ctx["table"].str.startswith("context").all() and ctx["source"].str.startswith("paper Table").all()
    assert not any(c.startswith("ours_") for c in ctx.columns)


def test_paper_ablation_comparison(synthetic_runs):
    abl = paper_ablation_comparison(synthetic_runs)
    assert set(zip(abl["transform"], abl["kd_weight"])) == {("none", 0.9), ("zscore", 3.0), ("zscore", 9.0)}
    z9 = abl[(abl["transform"] == "zscore") & (abl["kd_weight"] == 9.0)].iloc[0]
    assert z9["paper_top1"] == 76.62 and z9["paper_source"] == "paper Table 4"
    assert z9["ours_last_top1_mean"] == pytest.approx(76.75)
