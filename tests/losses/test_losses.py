"""Loss correctness: golden values, invariances, identities and numerical safety."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_losses as ref
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lskd.losses import (
    available_methods,
    bc_loss,
    build_method,
    cc_loss,
    distillation_methods,
    dkd_loss,
    dkd_terms,
    kd_loss,
    method_info,
    standardize,
)

RNG = np.random.default_rng(20240617)
S = RNG.normal(0, 3, size=(6, 10))
T = RNG.normal(1, 5, size=(6, 10))
Y = np.array([0, 3, 9, 3, 5, 1])


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# ---------------------------------------------------------------- golden values
def test_kd_hand_computed_two_class_case():
    # p_t = [1/2, 1/2], p_s = [3/4, 1/4] at T = 1: KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
    loss = kd_loss(t64(np.array([[math.log(3.0), 0.0]])), t64(np.array([[0.0, 0.0]])), 1.0)
    assert loss.item() == pytest.approx(0.5 * math.log(4 / 3), abs=1e-12)
    # at T = 2 the logits halve (p_s = [√3, 1]/(√3+1)) and the loss is multiplied by T² = 4
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    expected = 4 * (0.5 * math.log(0.5 / p) + 0.5 * math.log(0.5 / (1 - p)))
    assert kd_loss(t64(np.array([[math.log(3.0), 0.0]])), t64(np.array([[0.0, 0.0]])), 2.0).item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("temp", [1.0, 2.0, 4.0, 8.0])
def test_kd_none_equals_textbook_formula(temp):
    assert kd_loss(t64(S), t64(T), temp).item() == pytest.approx(ref.kd(S, T, temp), rel=1e-10)


@pytest.mark.parametrize("ddof,std", [(1, "unbiased"), (0, "population")])
def test_kd_zscore_matches_reference(ddof, std):
    expected = ref.kd(ref.zscore(S, ddof), ref.zscore(T, ddof), 2.0)
    assert kd_loss(t64(S), t64(T), 2.0, "zscore", std=std).item() == pytest.approx(expected, rel=1e-10)


def test_kd_per_sample_reduction():
    per = kd_loss(t64(S), t64(T), 4.0, reduction="none")
    assert per.shape == (6,)
    assert per.mean().item() == pytest.approx(ref.kd(S, T, 4.0), rel=1e-10)


@pytest.mark.parametrize("temp,alpha,beta", [(4.0, 1.0, 8.0), (1.0, 0.5, 2.0), (2.0, 9.0, 72.0)])
def test_dkd_matches_reference(temp, alpha, beta):
    tckd, nckd = ref.dkd_parts(S, T, Y, temp)
    expected = float(np.mean(alpha * tckd + beta * nckd))
    got = dkd_loss(t64(S), t64(T), torch.tensor(Y), temp, alpha, beta).item()
    assert got == pytest.approx(expected, rel=1e-10)


def test_dkd_zscore_matches_reference():
    tckd, nckd = ref.dkd_parts(ref.zscore(S), ref.zscore(T), Y, 2.0)
    got = dkd_loss(t64(S), t64(T), torch.tensor(Y), 2.0, 1.0, 8.0, transform="zscore").item()
    assert got == pytest.approx(float(np.mean(tckd + 8 * nckd)), rel=1e-9)


@pytest.mark.parametrize("temp", [1.0, 4.0])
def test_dkd_identity_kd_equals_tckd_plus_weighted_nckd(temp):
    """DKD paper Eq. 5: KD = TCKD + (1 − p_t^T) · NCKD, per sample."""
    tckd, nckd = dkd_terms(t64(S), t64(T), torch.tensor(Y), temp)
    p_teacher = ref.softmax(T / temp)[np.arange(6), Y]
    kd_per = kd_loss(t64(S), t64(T), temp, reduction="none")
    np.testing.assert_allclose(kd_per.numpy(), (tckd + (1 - torch.tensor(p_teacher)) * nckd).numpy(), rtol=1e-10)


@pytest.mark.parametrize("temp", [1.0, 4.0])
def test_mlkd_relation_losses_match_reference(temp):
    assert cc_loss(t64(S), t64(T), temp).item() == pytest.approx(ref.cc(S, T, temp), rel=1e-10)
    assert bc_loss(t64(S), t64(T), temp).item() == pytest.approx(ref.bc(S, T, temp), rel=1e-10)


# ---------------------------------------------------------------- transforms
@pytest.mark.parametrize("std,ddof", [("unbiased", 1), ("population", 0)])
def test_standardize_zscore_properties(std, ddof):
    z = standardize(t64(T), "zscore", std=std)
    np.testing.assert_allclose(z.numpy(), ref.zscore(T, ddof), rtol=1e-12)
    # the official (x - m) / (std + eps) differs only by the eps placement: relative eps / std
    np.testing.assert_allclose(z.numpy(), ref.zscore_official(T, ddof), rtol=1e-6)
    official_kd = ref.kd(ref.zscore_official(S, ddof), ref.zscore_official(T, ddof), 2.0)
    assert kd_loss(t64(S), t64(T), 2.0, "zscore", std=std).item() == pytest.approx(official_kd, rel=1e-6)
    np.testing.assert_allclose(z.mean(-1).numpy(), 0, atol=1e-12)
    np.testing.assert_allclose(z.numpy().std(-1, ddof=ddof), 1, rtol=1e-6)
    # order preserving, and bounded by sqrt(K - 1) (population convention; paper Sec. 4.4)
    assert (np.argsort(z.numpy(), -1) == np.argsort(T, -1)).all()
    assert standardize(t64(T), "zscore", std="population").abs().max() <= math.sqrt(9)


def test_standardize_center_and_scale():
    np.testing.assert_allclose(standardize(t64(T), "center").numpy(), T - T.mean(-1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(
        standardize(t64(T), "scale").numpy(), T / (T.std(-1, ddof=1, keepdims=True) + 1e-7), rtol=1e-12
    )
    assert standardize(t64(T), "none") is not None and torch.equal(standardize(t64(T), "none"), t64(T))


def test_unknown_transform_is_rejected_with_allowed_values():
    with pytest.raises(ValueError, match="allowed: none, center, scale, zscore"):
        standardize(t64(T), "minmax")
    with pytest.raises(ValueError, match="unbiased, population"):
        kd_loss(t64(S), t64(T), 2.0, "zscore", std="biased")


affine = st.tuples(st.floats(0.05, 20.0), st.floats(-50.0, 50.0))


def _affine(x: np.ndarray, ab: tuple[float, float]) -> torch.Tensor:
    return t64(ab[0] * x + ab[1])


@settings(max_examples=40, deadline=None)
@given(affine, affine)
def test_zscore_kd_and_dkd_invariant_to_affine_maps_of_either_side(ab_s, ab_t):
    y = torch.tensor(Y)
    base_kd = kd_loss(t64(S), t64(T), 2.0, "zscore").item()
    base_dkd = dkd_loss(t64(S), t64(T), y, 2.0, 1.0, 8.0, "zscore").item()
    assert kd_loss(_affine(S, ab_s), _affine(T, ab_t), 2.0, "zscore").item() == pytest.approx(base_kd, rel=1e-5)
    assert dkd_loss(_affine(S, ab_s), _affine(T, ab_t), y, 2.0, 1.0, 8.0, "zscore").item() == pytest.approx(base_dkd, rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.floats(-50.0, 50.0).filter(lambda b: abs(b) > 0.5), st.floats(0.05, 20.0).filter(lambda a: abs(a - 1) > 0.05))
def test_center_and_scale_partial_invariances(b, a):
    x = t64(T)
    # at the logit level each transform removes one of the two "shackles" of Sec. 4.2
    torch.testing.assert_close(standardize(x + b, "center"), standardize(x, "center"))
    assert not torch.allclose(standardize(a * x, "center"), standardize(x, "center"))
    torch.testing.assert_close(standardize(a * x, "scale"), standardize(x, "scale"), rtol=1e-6, atol=1e-6)
    assert not torch.allclose(standardize(x + b, "scale"), standardize(x, "scale"))
    # KD only sees softmax, which ignores per-sample shifts: center-KD is raw KD (scale-sensitive) ...
    base_c = kd_loss(t64(S), t64(T), 2.0, "center").item()
    assert base_c == pytest.approx(kd_loss(t64(S), t64(T), 2.0).item(), rel=1e-9)
    assert kd_loss(t64(S + b), t64(T - b), 2.0, "center").item() == pytest.approx(base_c, rel=1e-9)
    assert kd_loss(t64(a * S), t64(T), 2.0, "center").item() != pytest.approx(base_c, rel=1e-3)
    # ... and scale-KD equals z-score KD, invariant to a * z + b
    base_s = kd_loss(t64(S), t64(T), 2.0, "scale").item()
    assert base_s == pytest.approx(kd_loss(t64(S), t64(T), 2.0, "zscore").item(), rel=1e-6)
    assert kd_loss(t64(a * S + b), t64(T / a - b), 2.0, "scale").item() == pytest.approx(base_s, rel=1e-5)


def test_raw_kd_is_not_scale_invariant():
    assert kd_loss(t64(3 * S), t64(T), 4.0).item() != pytest.approx(kd_loss(t64(S), t64(T), 4.0).item(), rel=1e-3)


@pytest.mark.parametrize("method", ["ctkd", "mlkd"])
def test_standardized_terms_of_ctkd_and_mlkd_are_affine_invariant(method):
    torch.manual_seed(0)
    m = build_method(method, transform="zscore").double()
    y = torch.tensor(Y)

    def kd_term(s, t):
        if method == "mlkd":
            return m((s, s * 0.5), (t, t), y)["kd"].item()
        return m(s, t, y, epoch=3)["kd"].item()

    base = kd_term(t64(S), t64(T))
    assert kd_term(t64(4 * S - 7), t64(0.3 * T + 2)) == pytest.approx(base, rel=1e-5)
    assert kd_term(t64(0.2 * S + 30), t64(T)) == pytest.approx(base, rel=1e-5)


# ---------------------------------------------------------------- CTKD
def test_ctkd_temperature_stays_in_range():
    m = build_method("ctkd")
    for g in (-1e4, -10.0, 0.0, 1.0, 10.0, 1e4):
        with torch.no_grad():
            m.temperature_logit.fill_(g)
        temp = m.temperature().item()
        assert 1.0 <= temp <= 21.0
    with torch.no_grad():
        m.temperature_logit.fill_(1.0)
    assert m.temperature().item() == pytest.approx(1 + 20 / (1 + math.exp(-1)))


def test_ctkd_cosine_curriculum():
    m = build_method("ctkd", curriculum_epochs=10)
    assert m.grl_lambda(0) == 0.0
    assert m.grl_lambda(5) == pytest.approx(0.5)
    assert m.grl_lambda(10) == pytest.approx(1.0)
    assert m.grl_lambda(50) == pytest.approx(1.0)
    assert m.grl_lambda(2.5) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)


@pytest.mark.parametrize("transform", ["none", "zscore"])
def test_ctkd_temperature_receives_reversed_gradient(transform):
    m = build_method("ctkd", transform=transform, kd_weight=1.0, ce_weight=0.0).double()
    s, t, y = t64(S).requires_grad_(True), t64(T), torch.tensor(Y)
    epoch = 4
    m(s, t, y, epoch=epoch)["kd"].backward()
    reversed_grad = m.temperature_logit.grad.item()
    # the plain gradient of the same loss w.r.t. the temperature logit, without reversal
    g = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    kd_loss(t64(S), t, 1 + 20 * torch.sigmoid(g), transform).backward()
    lam = m.grl_lambda(epoch)
    assert 0 < lam < 1
    assert reversed_grad == pytest.approx(-lam * g.grad.item(), rel=1e-10)
    assert abs(g.grad.item()) > 0
    # the student still gets the ordinary (non-reversed) gradient
    s2 = t64(S).requires_grad_(True)
    kd_loss(s2, t, m.temperature().detach(), transform).backward()
    np.testing.assert_allclose(s.grad.numpy(), s2.grad.numpy(), rtol=1e-10)


# ---------------------------------------------------------------- methods
def test_build_method_rejects_unknown_names_and_hparams():
    with pytest.raises(ValueError, match="did you mean 'dkd'"):
        build_method("dkdd")
    with pytest.raises(TypeError, match="accepted: .*temperature"):
        build_method("kd", temprature=4)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        build_method("kd", temperature=-1)
    assert set(available_methods()) >= {"kd", "dkd", "ctkd", "mlkd", "ce"}


def test_method_terms_are_the_weighted_losses():
    s, t, y = t64(S), t64(T), torch.tensor(Y)
    out = build_method("kd", temperature=2.0, transform="zscore", ce_weight=0.1, kd_weight=9.0)(s, t, y)
    assert set(out) == {"ce", "kd"}
    assert out["kd"].item() == pytest.approx(9 * ref.kd(ref.zscore(S), ref.zscore(T), 2.0), rel=1e-9)
    ce = -np.mean(np.log(ref.softmax(S)[np.arange(6), Y]))
    assert out["ce"].item() == pytest.approx(0.1 * ce, rel=1e-10)


def test_dkd_linear_warmup():
    m = build_method("dkd", warmup=20, alpha=1.0, beta=8.0)
    s, t, y = t64(S), t64(T), torch.tensor(Y)
    full = build_method("dkd", warmup=0)(s, t, y)
    for epoch, factor in [(1, 0.05), (10, 0.5), (20, 1.0), (100, 1.0)]:
        out = m(s, t, y, epoch=epoch)
        assert out["tckd"].item() == pytest.approx(factor * full["tckd"].item(), rel=1e-12)
        assert out["nckd"].item() == pytest.approx(factor * full["nckd"].item(), rel=1e-12)


def test_mlkd_terms_match_reference():
    s_w, s_s, t_w, t_s = t64(S), t64(S[::-1].copy()), t64(T), t64(T * 0.7)
    m = build_method("mlkd", temperature=4.0, extra_temperatures=(2.0,), kd_weight=0.9, ce_weight=0.1)
    out = m((s_w, s_s), (t_w, t_s), torch.tensor(Y))
    temps = (4.0, 2.0)
    kd = sum(ref.kd(S, T, x) + ref.kd(S[::-1], T * 0.7, x) for x in temps)
    assert out["kd"].item() == pytest.approx(0.9 * kd, rel=1e-9)
    assert out["cc"].item() == pytest.approx(0.9 * sum(ref.cc(S, T, x) for x in temps), rel=1e-9)
    assert out["bc"].item() == pytest.approx(0.9 * sum(ref.bc(S, T, x) for x in temps), rel=1e-9)
    assert m.views == ("train", "strong")


# ---------------------------------------------------------------- numerical safety
def _inputs(kind: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    if kind == "constant":
        return torch.full((4, 10), 3.0, dtype=dtype), torch.zeros(4, 10, dtype=dtype)
    if kind == "huge":
        return (torch.randn(4, 10, generator=g) * 1e4).to(dtype), (torch.randn(4, 10, generator=g) * 1e4).to(dtype)
    return torch.randn(4, 10, generator=g).to(dtype), torch.randn(4, 10, generator=g).to(dtype)


@pytest.mark.parametrize("method,transform", [(m, t) for m in distillation_methods() for t in method_info(m)["transforms"]])
@pytest.mark.parametrize("kind,dtype", [
    ("constant", torch.float32), ("huge", torch.float32), ("normal", torch.float16),
    ("normal", torch.bfloat16), ("huge", torch.bfloat16), ("constant", torch.bfloat16),
])
def test_losses_and_gradients_stay_finite(method, transform, kind, dtype):
    s, t = _inputs(kind, dtype)
    s.requires_grad_(True)
    y = torch.tensor([0, 1, 2, 9])
    m = build_method(method, transform=transform)
    views = len(m.views)  # a method reading several views gets one logits tensor per view
    out = m((s,) * views, (t,) * views, y, epoch=5) if views > 1 else m(s, t, y, epoch=5)
    total = sum(out.values())
    assert torch.isfinite(total), out
    total.backward()
    assert torch.isfinite(s.grad).all()
    assert all(v.dtype == torch.float32 for v in out.values())


# ---------------------------------------------------------------- the registry describes every method
@pytest.mark.parametrize("method", available_methods())
def test_every_registered_method_describes_itself(method):
    """Name, paper, a meaning for every hyper-parameter, and defaults that build: what `lskd list`, the config check
    and the docs read from the registered class."""
    info = method_info(method)
    assert info["summary"] and info["paper"]
    assert [k for k, hp in info["hparams"].items() if not hp["help"]] == []
    assert build_method(method).name == method
    assert set(info["transforms"]) <= {"none", "center", "scale", "zscore"}
    assert bool(info["transforms"]) == info["needs_teacher"]


def _temperature_grad(s: torch.Tensor, t: torch.Tensor, student_first: bool) -> float:
    """∂ T²·mean KL(softmax(t/T) ‖ softmax(s/T)) / ∂T, building the graph with the student (or teacher) side first."""
    temp = torch.tensor(4.0, requires_grad=True)
    if student_first:
        z = s / temp
        v = t / temp
    else:
        v = t / temp
        z = s / temp
    kl = F.kl_div(F.log_softmax(z, -1), F.log_softmax(v, -1), reduction="none", log_target=True).sum(-1)
    (kl * temp**2).mean().backward()
    return temp.grad.item()


def test_a_learned_temperatures_gradient_keeps_its_summation_order():
    """CTKD's T gets gradient through s/T, t/T and T²; autograd sums them in graph order, so the two orders differ in
    the last bits. kd_loss keeps the order it has always had (student first), so CTKD runs stay bit-identical across
    versions (a refactor that swapped it moved the default run's CTKD numbers by up to 0.75 points)."""
    torch.manual_seed(3)
    s, t = torch.randn(64, 10), 3 * torch.randn(64, 10)
    temp = torch.tensor(4.0, requires_grad=True)
    kd_loss(s, t, temp).backward()
    assert _temperature_grad(s, t, student_first=False) != _temperature_grad(s, t, student_first=True)
    assert temp.grad.item() == _temperature_grad(s, t, student_first=True)
