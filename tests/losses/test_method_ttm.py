"""TTM and WTTM (lskd.losses.ttm): golden values, an independent float64 NumPy reference, invariances and the
method contract (finite losses and gradients on extreme inputs: the shared test over every registered method in
test_losses.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reference_losses import softmax, transform_ref

import lskd.losses.ttm  # noqa: F401  (registers "ttm" and "wttm")
from lskd.losses import build_method, kd_loss, method_class, method_hparams, method_info
from lskd.losses.ttm import ttm_loss, wttm_loss, wttm_weights

RNG = np.random.default_rng(2402)
S = RNG.normal(0, 3, size=(6, 10))
T = RNG.normal(1, 5, size=(6, 10))
Y = np.array([0, 3, 9, 3, 5, 1])
TRANSFORMS = ("none", "center", "scale", "zscore")


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# ---------------------------------------------------------------- independent float64 reference


def ttm_ref(s: np.ndarray, t: np.ndarray, temp: float, kind: str = "none", weighted: bool = False) -> np.ndarray:
    """Per-sample (W)TTM from the paper: p_t^γ / Σ p_t^γ with γ = 1/T, matched by softmax(f(z)) at temperature 1;
    WTTM multiplies by Σ_k p_t,k^γ. Written with explicit powers of the T = 1 teacher distribution."""
    s, t = transform_ref(s, kind), transform_ref(t, kind)
    gamma = 1.0 / temp
    powered = softmax(t) ** gamma
    q = powered / powered.sum(axis=-1, keepdims=True)
    p_s = softmax(s)
    kl = np.sum(q * np.log(q / p_s), axis=-1)
    return kl * powered.sum(axis=-1) if weighted else kl


# ---------------------------------------------------------------- golden values
def test_hand_computed_case():
    # T = 2 (γ = 1/2). Sample 1: teacher v = 2·ln[1, 1, 2], so softmax(v / 2) = [1, 1, 2] / 4; student z = ln[1, 2, 1],
    #   so softmax(z) = [1, 2, 1] / 4. KL = ¼ ln 1 + ¼ ln(½) + ½ ln 2 = ¼ ln 2.
    # Sample 2: v = z = [0, 0, 0]: both uniform, KL = 0.  TTM = (¼ ln 2 + 0) / 2 = ln 2 / 8 ≈ 0.086643.
    # WTTM weights: p_t = softmax(v) at T = 1. Sample 1: [1, 1, 4] / 6, w = Σ √p = (1 + 1 + 2) / √6 = 4 / √6.
    #   Sample 2: uniform, w = 3 · √(1/3) = √3. WTTM = (4/√6 · ¼ ln 2 + √3 · 0) / 2 = ln 2 / (2√6) ≈ 0.141492.
    z = t64(np.log(np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 1.0]])))
    v = t64(2 * np.log(np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 1.0]])))
    assert ttm_loss(z, v, 2.0).item() == pytest.approx(math.log(2) / 8, rel=1e-12)
    np.testing.assert_allclose(wttm_weights(v, 2.0).numpy(), [4 / math.sqrt(6), math.sqrt(3)], rtol=1e-12)
    assert wttm_loss(z, v, 2.0).item() == pytest.approx(math.log(2) / (2 * math.sqrt(6)), rel=1e-12)
    # no T² factor: the same distributions at T = 4 (v = 4·ln[1, 1, 2]) give the same ¼ ln 2 for sample 1
    assert ttm_loss(z[:1], 2 * v[:1], 4.0).item() == pytest.approx(math.log(2) / 4, rel=1e-12)


@pytest.mark.parametrize("temp", [1.0, 2.0, 4.0, 10.0])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_matches_reference(temp, transform):
    # z-score / scale: lskd's ε placement differs from (x − m)/(σ + ε) by a relative ε/σ ≈ 1e-7
    rtol = 1e-10 if transform in ("none", "center") else 1e-6
    for weighted, loss in ((False, ttm_loss), (True, wttm_loss)):
        per = loss(t64(S), t64(T), temp, transform, reduction="none").numpy()
        np.testing.assert_allclose(per, ttm_ref(S, T, temp, transform, weighted), rtol=rtol)
        assert loss(t64(S), t64(T), temp, transform).item() == pytest.approx(per.mean(), rel=1e-12)


def test_population_std_matches_reference():
    def zscore_pop(x: np.ndarray) -> np.ndarray:
        return transform_ref(x, "zscore", ddof=0)

    expected = ttm_ref(zscore_pop(S), zscore_pop(T), 4.0, "none", weighted=True)
    got = wttm_loss(t64(S), t64(T), 4.0, "zscore", std="population", reduction="none").numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# ---------------------------------------------------------------- properties
def test_temperature_one_is_kd_at_one_and_unweighted():
    # γ = 1: the teacher is not transformed, Σ p_t = 1, and KD at T = 1 carries T² = 1
    kd = kd_loss(t64(S), t64(T), 1.0).item()
    assert ttm_loss(t64(S), t64(T), 1.0).item() == pytest.approx(kd, rel=1e-12)
    assert wttm_loss(t64(S), t64(T), 1.0).item() == pytest.approx(kd, rel=1e-12)
    np.testing.assert_allclose(wttm_weights(t64(T), 1.0).numpy(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("temp", [0.5, 2.0, 4.0])
def test_zero_when_student_matches_the_transformed_teacher(temp):
    # the minimum is not student = teacher (the student has no temperature) but softmax(z) = softmax(v / T)
    c = RNG.normal(0, 10, size=(6, 1))
    assert ttm_loss(t64(T / temp + c), t64(T), temp).item() == pytest.approx(0.0, abs=1e-12)
    assert wttm_loss(t64(T / temp + c), t64(T), temp).item() == pytest.approx(0.0, abs=1e-12)
    assert ttm_loss(t64(T), t64(T), temp).item() > 1e-3  # student = teacher is not the optimum for T ≠ 1


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_invariant_to_per_sample_shifts(transform):
    b, c = RNG.normal(0, 50, size=(6, 1)), RNG.normal(0, 50, size=(6, 1))
    for loss in (ttm_loss, wttm_loss):
        base = loss(t64(S), t64(T), 4.0, transform, reduction="none").numpy()
        np.testing.assert_allclose(loss(t64(S + b), t64(T + c), 4.0, transform, reduction="none").numpy(), base,
                                   rtol=1e-9)


def test_zscore_is_invariant_to_positive_affine_maps_and_raw_is_not():
    a, b = RNG.uniform(0.1, 10, size=(6, 1)), RNG.normal(0, 20, size=(6, 1))
    base = wttm_loss(t64(S), t64(T), 4.0, "zscore").item()
    assert wttm_loss(t64(a * S + b), t64(T / a - b), 4.0, "zscore").item() == pytest.approx(base, rel=1e-6)
    assert wttm_loss(t64(3 * S), t64(T), 4.0).item() != pytest.approx(wttm_loss(t64(S), t64(T), 4.0).item(), rel=1e-3)


def test_center_equals_none_and_scale_equals_zscore():
    for loss in (ttm_loss, wttm_loss):
        assert loss(t64(S), t64(T), 4.0, "center").item() == pytest.approx(loss(t64(S), t64(T), 4.0).item(), rel=1e-10)
        assert loss(t64(S), t64(T), 4.0, "scale").item() == pytest.approx(
            loss(t64(S), t64(T), 4.0, "zscore").item(), rel=1e-6)


def test_wttm_with_equal_weights_is_a_multiple_of_ttm():
    # teacher rows that are permutations of one vector have the same Σ_k p_k^γ, so WTTM = w · TTM
    row = RNG.normal(0, 4, size=10)
    teacher = np.stack([RNG.permutation(row) for _ in range(6)])
    w = wttm_weights(t64(teacher), 4.0).numpy()
    np.testing.assert_allclose(w, w[0], rtol=1e-12)
    assert w[0] > 1  # γ < 1 and a non-one-hot teacher: Σ p^γ > Σ p = 1
    assert wttm_loss(t64(S), t64(teacher), 4.0).item() == pytest.approx(
        w[0] * ttm_loss(t64(S), t64(teacher), 4.0).item(), rel=1e-12)
    # the uniform teacher has the largest weight, K^(1 − γ)
    assert wttm_weights(torch.zeros(1, 10, dtype=torch.float64), 4.0).item() == pytest.approx(10 ** 0.75, rel=1e-12)


def test_wttm_weights_are_not_normalised_across_the_batch():
    # the official wttm.py averages norm · KL: the weight of a sample does not depend on the rest of the batch
    w_all = wttm_weights(t64(T), 4.0).numpy()
    np.testing.assert_allclose(wttm_weights(t64(T[:2]), 4.0).numpy(), w_all[:2], rtol=1e-12)
    np.testing.assert_allclose(w_all, np.sum(softmax(T) ** 0.25, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("loss", [ttm_loss, wttm_loss])
def test_gradient_matches_finite_differences(loss):
    s = t64(S[:3, :5]).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, t64(T[:3, :5]), 3.0, "zscore"), (s,))


# ---------------------------------------------------------------- the method contract
@pytest.mark.parametrize("method,weighted", [("ttm", False), ("wttm", True)])
def test_build_method_returns_the_weighted_terms(method, weighted):
    m = build_method(method, temperature=4.0, ce_weight=0.5, kd_weight=3.0, transform="center")
    out = m(t64(S), t64(T), torch.tensor(Y))
    assert set(out) == {"ce", "kd"}
    assert out["kd"].item() == pytest.approx(3.0 * float(np.mean(ttm_ref(S, T, 4.0, "center", weighted))), rel=1e-10)
    ce = -np.mean(np.log(softmax(S)[np.arange(6), Y]))
    assert out["ce"].item() == pytest.approx(0.5 * ce, rel=1e-10)


def test_defaults_are_the_documented_official_values():
    ttm, wttm = build_method("ttm"), build_method("wttm")
    assert (ttm.temperature, ttm.ce_weight, ttm.kd_weight) == (10.0, 1.0, 45.0)  # README: --ttm_l 0.1 -r 1 -b 45
    assert (wttm.temperature, wttm.ce_weight, wttm.kd_weight) == (5.0, 1.0, 4.0)  # README: --ttm_l 0.2 -a 4
    assert ttm.transform == wttm.transform == "none"


@pytest.mark.parametrize("method", ["ttm", "wttm"])
@pytest.mark.parametrize("kwargs,message", [
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"temperature": -1.0}, "temperature must be > 0"),
    ({"kd_weight": -1.0}, "kd_weight must be >= 0"),
    ({"ce_weight": -0.5}, "ce_weight must be >= 0"),
    ({"eps": -1e-7}, "eps must be > 0"),
    ({"transform": "minmax"}, "allowed: none, center, scale, zscore"),
])
def test_refuses_bad_values(method, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_method(method, **kwargs)


def test_refuses_unknown_hparams_and_bad_reduction():
    with pytest.raises(TypeError, match="accepted: .*temperature"):
        build_method("ttm", ttm_l=0.1)
    with pytest.raises(ValueError, match="unknown reduction"):
        wttm_loss(t64(S), t64(T), 2.0, reduction="sum")


@pytest.mark.parametrize("method", ["ttm", "wttm"])
def test_every_init_parameter_is_described(method):
    cls = method_class(method)
    params = list(method_hparams(cls.name))  # its own and those it passes on (**logits)
    assert all(cls.declared()[p].help for p in params), [p for p in params if not cls.declared()[p].help]
    info = method_info(method)
    assert info["transforms"] == TRANSFORMS
    assert info["paper"] and info["summary"] and info["name"] == method
