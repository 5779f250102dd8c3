"""NormKD (lskd.losses.normkd): golden values, an independent float64 NumPy reference, invariances and the method
contract (finite losses and gradients on extreme inputs: the shared test over every registered method in
test_losses.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reference_losses import softmax

import lskd.losses.normkd  # noqa: F401  (registers "normkd")
from lskd.losses import build_method, kd_loss, method_class, method_hparams, method_info
from lskd.losses.normkd import normkd_loss

RNG = np.random.default_rng(2308)
S = RNG.normal(0, 3, size=(6, 10))
T = RNG.normal(1, 5, size=(6, 10))
Y = np.array([0, 3, 9, 3, 5, 1])


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# ---------------------------------------------------------------- independent float64 reference

def normkd_ref(s: np.ndarray, t: np.ndarray, t_norm: float, ddof: int = 1, center: bool = False,
               eps: float = 1e-7) -> np.ndarray:
    """Per-sample NormKD from the formula: T_i = T_norm (σ_i + ε) per side, KL(p_t ‖ p_s) · (T^t_i)²."""
    if center:
        s = s - s.mean(axis=-1, keepdims=True)
        t = t - t.mean(axis=-1, keepdims=True)
    temp_s = t_norm * (s.std(axis=-1, ddof=ddof, keepdims=True) + eps)
    temp_t = t_norm * (t.std(axis=-1, ddof=ddof, keepdims=True) + eps)
    p_t, p_s = softmax(t / temp_t), softmax(s / temp_s)
    return np.sum(p_t * np.log(p_t / p_s), axis=-1) * temp_t[:, 0] ** 2


# ---------------------------------------------------------------- golden values
def test_hand_computed_case():
    # Sample 1: student z = [0, 1, -1] (mean 0, unbiased var (0+1+1)/2 = 1, σ = 1); teacher v = [2, 0, -2]
    #   (var (4+0+4)/2 = 4, σ = 2). With T_norm = 1: z / 1 = [0, 1, -1], v / 2 = [1, 0, -1]. Both have the same
    #   log-sum-exp (a permutation), so KL = Σ_k q_k (a_k − b_k) = q_0·1 + q_1·(−1) + q_2·0 = (e − 1) / (e + 1 + 1/e)
    #   with q = softmax([1, 0, -1]); the weight is the teacher's T² = (1·2)² = 4.
    # Sample 2: z = [3, 0, -3] (σ 3) and v = [1, 0, -1] (σ 1) both normalise to [1, 0, -1]: KL = 0.
    # Batch mean: 4 (e − 1) / (e + 1 + 1/e) / 2 = 2 (e − 1) / (e + 1 + 1/e) ≈ 0.84104.
    z = t64(np.array([[0.0, 1.0, -1.0], [3.0, 0.0, -3.0]]))
    v = t64(np.array([[2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]))
    e = math.e
    per = normkd_loss(z, v, 1.0, reduction="none")
    assert per[0].item() == pytest.approx(4 * (e - 1) / (e + 1 + 1 / e), rel=1e-6)  # ε = 1e-7 moves it by ~1e-7
    assert per[1].item() == pytest.approx(0.0, abs=1e-12)
    assert normkd_loss(z, v, 1.0).item() == pytest.approx(2 * (e - 1) / (e + 1 + 1 / e), rel=1e-6)
    # T_norm = 2 halves the normalised logits ([.5, 0, -.5] vs [0, .5, -.5]) and the weight is (2·2)² = 16:
    # KL = 0.5 (e^½ − 1) / (e^½ + 1 + e^−½), sample loss 8 (e^½ − 1) / (e^½ + 1 + e^−½), batch mean half of it.
    r = math.sqrt(e)
    assert normkd_loss(z, v, 2.0).item() == pytest.approx(4 * (r - 1) / (r + 1 + 1 / r), rel=1e-6)


@pytest.mark.parametrize("t_norm", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("transform", ["none", "center"])
@pytest.mark.parametrize("std,ddof", [("unbiased", 1), ("population", 0)])
def test_matches_reference(t_norm, transform, std, ddof):
    per = normkd_loss(t64(S), t64(T), t_norm, transform, std=std, reduction="none")
    np.testing.assert_allclose(per.numpy(), normkd_ref(S, T, t_norm, ddof, center=transform == "center"), rtol=1e-10)
    assert normkd_loss(t64(S), t64(T), t_norm, transform, std=std).item() == pytest.approx(
        float(np.mean(normkd_ref(S, T, t_norm, ddof, center=transform == "center"))), rel=1e-10)


def test_equals_zscore_kd_weighted_by_teacher_variance():
    """NormKD = Σ_i σ_t,i² · (z-score KD at τ = T_norm, which carries T_norm²): why scale/zscore rows are refused."""
    per_kd = kd_loss(t64(S), t64(T), 2.0, "zscore", reduction="none")
    sigma_t = T.std(axis=-1, ddof=1)
    np.testing.assert_allclose(normkd_loss(t64(S), t64(T), 2.0, reduction="none").numpy(), per_kd.numpy() * sigma_t**2,
                               rtol=1e-6)


# ---------------------------------------------------------------- properties
def test_zero_when_student_is_a_positive_affine_map_of_teacher():
    assert normkd_loss(t64(T), t64(T), 2.0).item() == pytest.approx(0.0, abs=1e-12)
    a, b = RNG.uniform(0.1, 10, size=(6, 1)), RNG.normal(0, 20, size=(6, 1))
    assert normkd_loss(t64(a * T + b), t64(T), 2.0).item() == pytest.approx(0.0, abs=1e-9)
    assert normkd_loss(t64(S), t64(T), 2.0).item() > 0.1


@pytest.mark.parametrize("transform", ["none", "center"])
def test_invariant_to_per_sample_affine_maps_of_the_student(transform):
    # softmax(z / (T_norm σ(z))) is unchanged by z → a_i z + b_i (a_i > 0): σ scales by a_i, the shift cancels
    a, b = RNG.uniform(0.05, 20, size=(6, 1)), RNG.normal(0, 50, size=(6, 1))
    base = normkd_loss(t64(S), t64(T), 2.0, transform, reduction="none").numpy()
    np.testing.assert_allclose(normkd_loss(t64(a * S + b), t64(T), 2.0, transform, reduction="none").numpy(), base,
                               rtol=1e-6)


def test_per_sample_scaling_of_both_sides_multiplies_the_loss_by_its_square():
    # Derivation: with z → a_i z and v → a_i v (a_i > 0) both σ's scale by a_i, so both softened distributions and
    # the KL are unchanged, while the weight (T_norm σ_t,i)² becomes a_i² times larger: loss_i → a_i² loss_i.
    # NormKD is therefore not scale invariant (unlike z-score KD); the KL part alone is.
    a = RNG.uniform(0.1, 10, size=(6, 1))
    base = normkd_loss(t64(S), t64(T), 2.0, reduction="none").numpy()
    scaled = normkd_loss(t64(a * S), t64(a * T), 2.0, reduction="none").numpy()
    np.testing.assert_allclose(scaled, base * a[:, 0] ** 2, rtol=1e-6)
    # a per-sample shift of the teacher changes nothing (σ and softmax ignore it)
    c = RNG.normal(0, 30, size=(6, 1))
    np.testing.assert_allclose(normkd_loss(t64(S), t64(T + c), 2.0, reduction="none").numpy(), base, rtol=1e-9)


def test_center_equals_none():
    assert normkd_loss(t64(S), t64(T), 2.0, "center").item() == pytest.approx(normkd_loss(t64(S), t64(T), 2.0).item(),
                                                                               rel=1e-10)


def test_gradient_matches_finite_differences():
    s = t64(S[:3, :5]).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: normkd_loss(x, t64(T[:3, :5]), 2.0), (s,))


# ---------------------------------------------------------------- the method contract
def test_build_method_returns_the_weighted_terms():
    m = build_method("normkd", temperature=2.0, ce_weight=0.1, kd_weight=0.9)
    out = m(t64(S), t64(T), torch.tensor(Y))
    assert set(out) == {"ce", "kd"}
    assert out["kd"].item() == pytest.approx(0.9 * float(np.mean(normkd_ref(S, T, 2.0))), rel=1e-10)
    ce = -np.mean(np.log(softmax(S)[np.arange(6), Y]))
    assert out["ce"].item() == pytest.approx(0.1 * ce, rel=1e-10)


def test_defaults_are_the_official_cifar100_values():
    m = build_method("normkd")
    assert (m.temperature, m.ce_weight, m.kd_weight, m.transform, m.std) == (2.0, 0.1, 0.9, "none", "unbiased")


@pytest.mark.parametrize("kwargs,message", [
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"temperature": -2.0}, "temperature must be > 0"),
    ({"kd_weight": -0.1}, "kd_weight must be >= 0"),
    ({"ce_weight": -1.0}, "ce_weight must be >= 0"),
    ({"eps": 0.0}, "eps must be > 0"),
    ({"transform": "zscore"}, "normkd does not take transform 'zscore'; allowed: none, center"),
    ({"transform": "scale"}, "allowed: none, center"),
    ({"transform": "minmax"}, "unknown logit transform 'minmax'"),
    ({"std": "biased"}, "unbiased, population"),
])
def test_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_method("normkd", **kwargs)


def test_refuses_unknown_hparams_and_bad_reduction():
    with pytest.raises(TypeError, match="accepted: .*temperature"):
        build_method("normkd", t_norm=2.0)
    with pytest.raises(ValueError, match="unknown reduction"):
        normkd_loss(t64(S), t64(T), 2.0, reduction="sum")


def test_every_init_parameter_is_described():
    cls = method_class("normkd")
    params = list(method_hparams(cls.name))  # its own and those it passes on (**logits)
    assert all(cls.declared()[p].help for p in params), [p for p in params if not cls.declared()[p].help]
    info = method_info("normkd")
    assert info["transforms"] == ("none", "center")
    assert info["paper"] and info["summary"] and not info["learns_temperature"]
