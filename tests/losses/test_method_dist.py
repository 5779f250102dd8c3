"""DIST (lskd.losses.dist): golden values, an independent float64 NumPy reference, invariances and the method
contract (finite losses and gradients on extreme inputs: the shared test over every registered method in
test_losses.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_losses import softmax, transform_ref

import lskd.losses.dist  # noqa: F401  (registers "dist")
from lskd.losses import build_method, method_class, method_hparams, method_info
from lskd.losses.dist import dist_loss, dist_terms, pearson_rows

RNG = np.random.default_rng(2205)
S = RNG.normal(0, 3, size=(6, 10))
T = RNG.normal(1, 5, size=(6, 10))
Y = np.array([0, 3, 9, 3, 5, 1])
TRANSFORMS = ("none", "center", "scale", "zscore")


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# ---------------------------------------------------------------- independent float64 reference


def pearson_ref(a: np.ndarray, b: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Row-wise Pearson correlation Σ(a−ā)(b−b̄) / (√Σ(a−ā)² √Σ(b−b̄)² + ε), ε = 1e-8 as in the official code."""
    da, db = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    return np.sum(da * db, axis=1) / (np.sqrt(np.sum(da**2, axis=1)) * np.sqrt(np.sum(db**2, axis=1)) + eps)


def dist_ref(s: np.ndarray, t: np.ndarray, tau: float, kind: str = "none") -> tuple[float, float]:
    """(τ²(1 − mean over samples of ρ(rows)), τ²(1 − mean over classes of ρ(columns))) from the DIST paper."""
    y_s, y_t = softmax(transform_ref(s, kind) / tau), softmax(transform_ref(t, kind) / tau)
    inter = tau**2 * (1 - np.mean(pearson_ref(y_s, y_t)))
    intra = tau**2 * (1 - np.mean(pearson_ref(y_s.T, y_t.T)))
    return float(inter), float(intra)


# ---------------------------------------------------------------- golden values
def test_hand_computed_case():
    # τ = 1, logits = ln of unnormalised probabilities, so the softmax rows are
    #   student [1, 2, 1]/4 and [2, 1, 1]/4,   teacher [1, 1, 2]/4 and [2, 1, 1]/4.
    # Inter-class (rows; ρ ignores the 1/4 scale): row 1: [1, 2, 1] vs [1, 1, 2], centred [−⅓, ⅔, −⅓] and
    #   [−⅓, −⅓, ⅔]: dot −⅓, norms² ⅔ each, ρ = −½. Row 2 is identical, ρ = 1. L_inter = 1 − (−½ + 1)/2 = ¾.
    # Intra-class (columns across the batch of 2): class 0: student [¼, ½], teacher [¼, ½], ρ = 1; class 1: teacher
    #   [¼, ¼] is constant, ρ = 0 (0 / (0 + ε)); class 2: student [¼, ¼] constant, ρ = 0. L_intra = 1 − ⅓ = ⅔.
    # ε = 1e-8 in the denominator moves each ρ by < 1e-6 (norm products 1/24 and 1/32 here).
    z = t64(np.log(np.array([[1.0, 2.0, 1.0], [2.0, 1.0, 1.0]])))
    v = t64(np.log(np.array([[1.0, 1.0, 2.0], [2.0, 1.0, 1.0]])))
    inter, intra = dist_terms(z, v, 1.0)
    assert inter.item() == pytest.approx(3 / 4, abs=1e-6)
    assert intra.item() == pytest.approx(2 / 3, abs=1e-6)
    np.testing.assert_allclose(pearson_rows(z.exp(), v.exp()).numpy(), [-0.5, 1.0], atol=1e-6)
    # τ = 2 with doubled logits gives the same probabilities, and both terms carry τ² = 4
    inter2, intra2 = dist_terms(2 * z, 2 * v, 2.0)
    assert inter2.item() == pytest.approx(3.0, abs=1e-5)
    assert intra2.item() == pytest.approx(8 / 3, abs=1e-5)
    assert dist_loss(2 * z, 2 * v, 2.0, beta=2.0, gamma=0.5).item() == pytest.approx(2 * 3.0 + 0.5 * 8 / 3, abs=1e-5)


@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0, 8.0])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_matches_reference(tau, transform):
    rtol = 1e-10 if transform in ("none", "center") else 1e-6  # ε placement of lskd's z-score: relative ε/σ
    inter, intra = dist_terms(t64(S), t64(T), tau, transform)
    ref_inter, ref_intra = dist_ref(S, T, tau, transform)
    assert inter.item() == pytest.approx(ref_inter, rel=rtol)
    assert intra.item() == pytest.approx(ref_intra, rel=rtol)


def test_population_std_matches_reference():
    zs, zt = transform_ref(S, "zscore", ddof=0), transform_ref(T, "zscore", ddof=0)
    inter, intra = dist_terms(t64(S), t64(T), 4.0, "zscore", std="population")
    assert (inter.item(), intra.item()) == pytest.approx(dist_ref(zs, zt, 4.0), rel=1e-6)


# ---------------------------------------------------------------- properties
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_minimal_when_student_equals_teacher(transform):
    # With a = b, ρ = n² / (n² + ε) for n = ‖a − ā‖, so each term is τ² · mean(ε / (n² + ε)): 0 up to the official
    # ε = 1e-8 (a few 1e-5 here for z-scored logits at τ = 4, whose nearly uniform rows have n² ≈ 5e-3).
    inter, intra = dist_terms(t64(T), t64(T), 4.0, transform)
    y = softmax(transform_ref(T, transform) / 4.0)
    for term, rows in ((inter, y), (intra, y.T)):
        n2 = np.sum((rows - rows.mean(axis=1, keepdims=True)) ** 2, axis=1)
        assert term.item() == pytest.approx(16 * np.mean(1e-8 / (n2 + 1e-8)), rel=1e-4, abs=1e-12)
        assert term.item() < 1e-4
    inter, intra = dist_terms(t64(S), t64(T), 4.0, transform)
    assert inter.item() > 0.1 and intra.item() > 0.1


def test_terms_lie_between_zero_and_two_tau_squared():
    # ρ ∈ [−1, 1]; a student that ranks every class backwards (z = −v) gives strongly negative row correlations
    for s in (S, -T):
        inter, intra = dist_terms(t64(s), t64(T), 2.0)
        assert 0 <= inter.item() <= 8 and 0 <= intra.item() <= 8
    assert dist_terms(t64(-T), t64(T), 2.0)[0].item() > 4  # mean ρ < 0


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_invariant_to_per_sample_shifts(transform):
    b, c = RNG.normal(0, 50, size=(6, 1)), RNG.normal(0, 50, size=(6, 1))
    base = dist_terms(t64(S), t64(T), 4.0, transform)
    shifted = dist_terms(t64(S + b), t64(T + c), 4.0, transform)
    for x, y in zip(base, shifted):
        assert y.item() == pytest.approx(x.item(), rel=1e-9)


def test_invariant_to_reordering_samples_or_classes_consistently():
    rows, cols = RNG.permutation(6), RNG.permutation(10)
    base = dist_terms(t64(S), t64(T), 4.0)
    for s, t in ((S[rows], T[rows]), (S[:, cols], T[:, cols])):
        for x, y in zip(base, dist_terms(t64(s), t64(t), 4.0)):
            assert y.item() == pytest.approx(x.item(), rel=1e-10)


def test_zscore_is_invariant_to_positive_affine_maps():
    a, b = RNG.uniform(0.1, 10, size=(6, 1)), RNG.normal(0, 20, size=(6, 1))
    base = dist_terms(t64(S), t64(T), 4.0, "zscore")
    for x, y in zip(base, dist_terms(t64(a * S + b), t64(T / a - b), 4.0, "zscore")):
        assert y.item() == pytest.approx(x.item(), rel=1e-6)


def test_center_equals_none_and_scale_equals_zscore():
    for a, b, rel in (("center", "none", 1e-10), ("scale", "zscore", 1e-6)):
        for x, y in zip(dist_terms(t64(S), t64(T), 4.0, a), dist_terms(t64(S), t64(T), 4.0, b)):
            assert x.item() == pytest.approx(y.item(), rel=rel)


def test_single_sample_batch_has_no_intra_class_signal():
    # every column of a one-row batch is constant: ρ = 0 and L_intra = τ² (documented)
    _, intra = dist_terms(t64(S[:1]), t64(T[:1]), 4.0)
    assert intra.item() == pytest.approx(16.0, rel=1e-12)


def test_gradient_matches_finite_differences():
    s = t64(S[:4, :5]).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: dist_loss(x, t64(T[:4, :5]), 2.0, 2.0, 2.0, "zscore"), (s,))


# ---------------------------------------------------------------- the method contract
def test_build_method_returns_the_weighted_terms():
    m = build_method("dist", temperature=4.0, ce_weight=0.5, beta=2.0, gamma=3.0, transform="zscore")
    out = m(t64(S), t64(T), torch.tensor(Y))
    assert set(out) == {"ce", "inter", "intra"}
    inter, intra = dist_ref(S, T, 4.0, "zscore")
    assert out["inter"].item() == pytest.approx(2.0 * inter, rel=1e-6)
    assert out["intra"].item() == pytest.approx(3.0 * intra, rel=1e-6)
    ce = -np.mean(np.log(softmax(S)[np.arange(6), Y]))
    assert out["ce"].item() == pytest.approx(0.5 * ce, rel=1e-10)
    scaled = build_method("dist", temperature=4.0, ce_weight=0.5, beta=2.0, gamma=3.0, kd_weight=9.0,
                          transform="zscore")(t64(S), t64(T), torch.tensor(Y))  # the grid's KD weight scales both
    assert scaled["inter"].item() == pytest.approx(18.0 * inter, rel=1e-6)
    assert scaled["intra"].item() == pytest.approx(27.0 * intra, rel=1e-6) and scaled["ce"] == out["ce"]


def test_defaults_are_the_official_cifar100_values():
    m = build_method("dist")  # dist_cifar.yaml: ori_loss_weight 1, kd_loss_weight 2, kd: dist_t4 (β = γ = 1, τ = 4)
    assert (m.temperature, m.ce_weight, m.beta, m.gamma, m.kd_weight, m.transform) == (4.0, 1.0, 2.0, 2.0, 1.0, "none")


@pytest.mark.parametrize("kwargs,message", [
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"temperature": -4.0}, "temperature must be > 0"),
    ({"beta": -1.0}, "beta must be >= 0"),
    ({"gamma": -1.0}, "gamma must be >= 0"),
    ({"kd_weight": -1.0}, "kd_weight must be >= 0"),
    ({"ce_weight": -1.0}, "ce_weight must be >= 0"),
    ({"transform": "minmax"}, "allowed: none, center, scale, zscore"),
    ({"std": "sample"}, "unbiased, population"),
])
def test_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_method("dist", **kwargs)


def test_refuses_unknown_hparams():
    with pytest.raises(TypeError, match="accepted: .*temperature"):
        build_method("dist", tau=4.0)


def test_every_init_parameter_is_described():
    cls = method_class("dist")
    params = list(method_hparams(cls.name))  # its own and those it passes on (**logits)
    assert all(cls.declared()[p].help for p in params), [p for p in params if not cls.declared()[p].help]
    info = method_info("dist")
    assert info["transforms"] == TRANSFORMS
    assert info["paper"] and info["summary"] and not info["learns_temperature"]
