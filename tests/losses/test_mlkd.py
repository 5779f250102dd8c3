"""MLKD: the two loss weightings ("lskd", "official") and the official FixMatch-style strong view."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageOps

from lskd.data import get_spec
from lskd.data.registry import VIEWS, RawSplit, ViewDataset
from lskd.data.transforms import (
    FIXMATCH_CUTOUT_FILL,
    FIXMATCH_CUTOUT_FILL_GRAY,
    FIXMATCH_OPS,
    FixMatchRandAugment,
    NormalizeToFloat,
    build_transform,
    cutout,
    fixmatch_cutout,
)
from lskd.losses import bc_loss, build_method, cc_loss, kd_loss, method_hparams
from lskd.losses.mlkd import MLKD

# ---------------------------------------------------------------- an independent float64 NumPy reference
# B = 2 samples, K = 3 classes; weak and strong views of student and teacher.
SW = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
TW = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
SS = np.array([[0.0, 1.0, 0.0], [1.0, 1.0, -1.0]])
TS = np.array([[1.0, 2.0, 0.0], [-1.0, 0.0, 2.0]])
Y = np.array([0, 2])
EXTRA = (3.0, 5.0, 2.0, 6.0)


def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, ddof=1, keepdims=True) + 1e-7)


def np_kd(s: np.ndarray, t: np.ndarray, temp: float, zscore: bool = False) -> float:
    """``T² · mean_i Σ_k p_t (log p_t − log p_s)``."""
    if zscore:
        s, t = np_zscore(s), np_zscore(t)
    ps, pt = np_softmax(s / temp), np_softmax(t / temp)
    return float(temp**2 * np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1)))


def np_cc(s: np.ndarray, t: np.ndarray, temp: float) -> float:
    ps, pt = np_softmax(s / temp), np_softmax(t / temp)
    return float(np.sum((pt.T @ pt - ps.T @ ps) ** 2) / s.shape[1])


def np_bc(s: np.ndarray, t: np.ndarray, temp: float) -> float:
    ps, pt = np_softmax(s / temp), np_softmax(t / temp)
    return float(np.sum((pt @ pt.T - ps @ ps.T) ** 2) / s.shape[0])


def np_ce(s: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(-np.log(np_softmax(s)[np.arange(len(y)), y])))


def np_mlkd(weighting: str, t0: float, w: float, lam: float, zscore: bool) -> dict[str, float]:
    temps = (t0, *EXTRA)
    ce = lam * (np_ce(SW, Y) + np_ce(SS, Y))
    cc = sum(np_cc(SW, TW, t) for t in temps)
    bc = sum(np_bc(SW, TW, t) for t in temps)
    if weighting == "lskd":
        kd = sum(np_kd(SW, TW, t, zscore) + np_kd(SS, TS, t, zscore) for t in temps)
        return {"ce": ce, "kd": w * kd, "cc": w * cc, "bc": w * bc}
    kd = (0.5 * sum(np_kd(SW, TW, t, zscore) for t in temps)
          + sum(np_kd(SS, TS, t, zscore) for t in (t0, 3.0, 5.0))
          + np_kd(SW, TW, 2.0, zscore) + np_kd(SW, TW, 6.0, zscore))
    return {"ce": ce, "kd": w * kd, "cc": 0.5 * w * cc, "bc": 0.5 * w * bc}


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def run(m: MLKD, sw=SW, ss=SS, tw=TW, ts=TS, y=Y) -> dict[str, float]:
    out = m((t64(sw), t64(ss)), (t64(tw), t64(ts)), torch.tensor(y))
    return {k: v.item() for k, v in out.items()}


# (weighting, T_0, kd_weight, ce_weight, transform): golden values of the NumPy formula, 12 significant digits
GOLDEN = [
    (("lskd", 4.0, 0.9, 0.1, "none"),
     {"ce": 0.351201503314, "kd": 9.69653114384, "cc": 0.156316262006, "bc": 0.00976999298605}),
    (("official", 4.0, 0.9, 0.1, "none"),
     {"ce": 0.351201503314, "kd": 7.06577359722, "cc": 0.0781581310029, "bc": 0.00488499649302}),
    (("official", 2.0, 9.0, 0.1, "zscore"),  # the official LS setting
     {"ce": 0.351201503314, "kd": 41.0701782178, "cc": 1.08587393062, "bc": 0.0818812644199}),
    (("lskd", 2.0, 9.0, 0.1, "zscore"),
     {"ce": 0.351201503314, "kd": 56.1002378265, "cc": 2.17174786123, "bc": 0.16376252884}),
]


# ---------------------------------------------------------------- the weightings
@pytest.mark.parametrize("case,golden", GOLDEN)
def test_golden_values(case, golden):
    weighting, t0, w, lam, transform = case
    expected = np_mlkd(weighting, t0, w, lam, transform == "zscore")
    for key, value in golden.items():  # the reference reproduces the stored numbers
        assert expected[key] == pytest.approx(value, rel=1e-11)
    m = build_method("mlkd", temperature=t0, kd_weight=w, ce_weight=lam, transform=transform, weighting=weighting)
    got = run(m)
    assert set(got) == {"ce", "kd", "cc", "bc"}
    # zscore: lskd's fused layer_norm equals (z - m) / (s + eps) up to a relative eps / s
    rel = 1e-6 if transform == "zscore" else 1e-12
    for key, value in golden.items():
        assert got[key] == pytest.approx(value, rel=rel), key


def test_official_uses_the_strong_pair_at_t0_3_5_and_the_weak_pair_at_2_and_6():
    m = build_method("mlkd", temperature=4.0, kd_weight=1.0, weighting="official")
    # student == teacher on the weak view: only the strong pair at T_0, 3, 5 remains; cc and bc vanish
    out = run(m, sw=TW)
    assert out["kd"] == pytest.approx(sum(np_kd(SS, TS, t) for t in (4.0, 3.0, 5.0)), rel=1e-12)
    assert out["cc"] == pytest.approx(0.0, abs=1e-15) and out["bc"] == pytest.approx(0.0, abs=1e-15)
    # student == teacher on the strong view: 0.5 * all five weak terms + the weak terms at 2 and 6
    out = run(m, ss=TS)
    weak = {t: np_kd(SW, TW, t) for t in (4.0, *EXTRA)}
    assert out["kd"] == pytest.approx(0.5 * sum(weak.values()) + weak[2.0] + weak[6.0], rel=1e-12)


@pytest.mark.parametrize("transform", ["none", "zscore"])
def test_official_equals_the_explicit_sum_of_terms(transform):
    g = torch.Generator().manual_seed(0)
    sw, ss, tw, ts = (torch.randn(8, 10, generator=g, dtype=torch.float64) * 3 for _ in range(4))
    y = torch.randint(0, 10, (8,), generator=g)
    w, lam, temps = 9.0, 0.1, (2.0, 3.0, 5.0, 2.0, 6.0)
    m = build_method("mlkd", temperature=2.0, kd_weight=w, ce_weight=lam, transform=transform, weighting="official")
    out = m((sw, ss), (tw, ts), y)

    def kd(s, t, temp):
        return kd_loss(s, t, temp, transform)

    expected_kd = w * (0.5 * sum(kd(sw, tw, t) for t in temps) + kd(ss, ts, 2.0) + kd(ss, ts, 3.0) + kd(ss, ts, 5.0)
                       + kd(sw, tw, 2.0) + kd(sw, tw, 6.0))
    torch.testing.assert_close(out["kd"], expected_kd, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["cc"], 0.5 * w * sum(cc_loss(sw, tw, t) for t in temps), rtol=1e-12, atol=0)
    torch.testing.assert_close(out["bc"], 0.5 * w * sum(bc_loss(sw, tw, t) for t in temps), rtol=1e-12, atol=0)
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(out["ce"], lam * (ce(sw, y) + ce(ss, y)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("transform", ["none", "zscore"])
def test_lskd_weighting_is_unchanged_bit_for_bit(transform):
    """The default equals today's formula, accumulated in today's order, exactly (float32 logits)."""
    g = torch.Generator().manual_seed(1)
    sw, ss, tw, ts = (torch.randn(16, 100, generator=g) * 4 for _ in range(4))
    y = torch.randint(0, 100, (16,), generator=g)
    hp = {"temperature": 4.0, "kd_weight": 0.9, "ce_weight": 0.1, "transform": transform}
    default, explicit = build_method("mlkd", **hp), build_method("mlkd", weighting="lskd", **hp)
    assert default.weighting == "lskd" and default.views == ("train", "strong")
    kd = cc = bc = 0.0
    for t in (4.0, *EXTRA):
        kd = kd + kd_loss(sw, tw, t, transform)
        kd = kd + kd_loss(ss, ts, t, transform)
        cc = cc + cc_loss(sw, tw, t)
        bc = bc + bc_loss(sw, tw, t)
    ce = torch.nn.functional.cross_entropy
    expected = {"ce": 0.1 * ce(sw, y) + 0.1 * ce(ss, y), "kd": 0.9 * kd, "cc": 0.9 * cc, "bc": 0.9 * bc}
    for m in (default, explicit):
        out = m((sw, ss), (tw, ts), y)
        assert out.keys() == expected.keys()
        for key in expected:
            assert torch.equal(out[key], expected[key]), key


@pytest.mark.parametrize("weighting", ["lskd", "official"])
def test_zscore_kd_terms_are_invariant_to_affine_logit_changes(weighting):
    g = torch.Generator().manual_seed(2)
    sw, ss, tw, ts = (torch.randn(8, 10, generator=g, dtype=torch.float64) for _ in range(4))
    y = torch.randint(0, 10, (8,), generator=g)

    def affine(z: torch.Tensor) -> torch.Tensor:  # per-sample a > 0 and b
        return z * (0.5 + 3 * torch.rand(len(z), 1, generator=g, dtype=z.dtype)) + 5 * torch.randn(
            len(z), 1, generator=g, dtype=z.dtype)

    m = build_method("mlkd", temperature=2.0, kd_weight=9.0, transform="zscore", weighting=weighting)
    before = m((sw, ss), (tw, ts), y)
    after = m((affine(sw), affine(ss)), (affine(tw), affine(ts)), y)
    torch.testing.assert_close(after["kd"], before["kd"], rtol=1e-6, atol=0)
    assert not torch.allclose(after["cc"], before["cc"])  # the relation terms are never standardized


def test_bad_hyper_parameters_raise_naming_the_allowed_values():
    with pytest.raises(ValueError, match="weighting 'paper'.*allowed: lskd, official"):
        build_method("mlkd", weighting="paper")
    with pytest.raises(ValueError, match="strong_view 'weak'.*allowed: strong, strong_fixmatch"):
        build_method("mlkd", strong_view="weak")
    with pytest.raises(ValueError, match="exactly 4 extra_temperatures"):
        build_method("mlkd", extra_temperatures=(2.0,), weighting="official")
    build_method("mlkd", extra_temperatures=(2.0,))  # lskd takes any list


def test_strong_view_hparam_sets_the_views():
    hp = method_hparams("mlkd")
    assert hp["weighting"] == "lskd" and hp["strong_view"] == "strong"
    assert MLKD.views == ("train", "strong")
    assert build_method("mlkd").views == ("train", "strong")
    m = build_method("mlkd", strong_view="strong_fixmatch", weighting="official")
    assert m.views == ("train", "strong_fixmatch") and set(m.views) <= set(VIEWS)


# ---------------------------------------------------------------- the FixMatch-style strong view
@pytest.mark.parametrize("name,shape", [("cifar100", (3, 32, 32)), ("fashion_mnist", (1, 28, 28)), ("digits", (1, 8, 8))])
def test_strong_fixmatch_view_returns_normalised_float32(name, shape):
    spec = get_spec(name)
    assert (spec.in_chans, spec.image_size, spec.image_size) == shape
    torch.manual_seed(0)
    img = torch.randint(0, 256, shape, dtype=torch.uint8)
    before = img.clone()
    view = build_transform(name, "strong_fixmatch")
    outs = [view(img) for _ in range(20)]
    assert torch.equal(img, before)  # never paints the dataset's own image
    for out in outs:
        assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.shape == shape
    lo = (0 - torch.tensor(spec.mean)) / torch.tensor(spec.std)
    hi = (1 - torch.tensor(spec.mean)) / torch.tensor(spec.std)
    stacked = torch.stack(outs)
    assert (stacked >= lo.view(-1, 1, 1) - 1e-5).all() and (stacked <= hi.view(-1, 1, 1) + 1e-5).all()
    assert len({o.numpy().tobytes() for o in outs}) > 1


def _dataset(name: str, n: int = 6) -> ViewDataset:
    """``n`` copies of one random image, so any difference between items comes from the augmentation."""
    spec = get_spec(name)
    g = torch.Generator().manual_seed(3)
    img = torch.randint(0, 256, (1, spec.in_chans, spec.image_size, spec.image_size), generator=g, dtype=torch.uint8)
    raw = RawSplit(spec=spec, targets=torch.zeros(n, dtype=torch.long), images=img.repeat(n, 1, 1, 1))
    views = ("train", "strong_fixmatch")
    return ViewDataset(raw, views, [build_transform(name, v) for v in views], torch.arange(n), "train")


@pytest.mark.parametrize("name", ["cifar100", "fashion_mnist"])
def test_strong_fixmatch_is_seeded_per_item(name):
    ds = _dataset(name)
    ds.seed_augmentation(7)
    random.seed(1)
    np.random.seed(1)
    first = [ds[i][0][1] for i in range(len(ds))]
    random.seed(2)  # Python's and numpy's global RNGs play no part
    np.random.seed(2)
    torch.manual_seed(5)  # nor torch's global state: each item is drawn from its own seeded stream
    again = [ds[i][0][1] for i in reversed(range(len(ds)))][::-1]
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert len({x.numpy().tobytes() for x in first}) == len(ds)  # items differ
    ds.seed_augmentation(8)
    assert not any(torch.equal(a, ds[i][0][1]) for i, a in enumerate(first))  # seeds differ


def test_strong_fixmatch_leaves_python_and_torch_rng_state_alone():
    ds = _dataset("cifar100")
    ds.seed_augmentation(0)
    state, torch_state = random.getstate(), torch.get_rng_state()
    ds[0]
    assert random.getstate() == state and torch.equal(torch.get_rng_state(), torch_state)


def _cutout_box(a: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (y0, y1, x0, x1) of the non-black pixels of an H x W x C array, None if all black."""
    ys, xs = np.nonzero(a.any(axis=2))
    if len(ys) == 0:
        return None
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


@pytest.mark.parametrize("shape,fill,max_side", [((3, 32, 32), FIXMATCH_CUTOUT_FILL, 16),
                                                  ((1, 28, 28), (FIXMATCH_CUTOUT_FILL_GRAY,), 14)])
def test_cutout_is_one_gray_square_of_at_most_half_the_width(shape, fill, max_side):
    """On a black image every op keeps black, so what is not black is the Cutout square."""
    aug = FixMatchRandAugment()
    black = torch.zeros(shape, dtype=torch.uint8)
    sides = []
    for seed in range(600):
        torch.manual_seed(seed)
        a = aug(black).permute(1, 2, 0).numpy()
        box = _cutout_box(a)
        assert box is not None
        y0, y1, x0, x1 = box
        patch = a[y0:y1, x0:x1]
        assert (patch == np.array(fill, dtype=np.uint8)).all()  # a filled rectangle in the official colour
        assert y1 - y0 <= max_side and x1 - x0 <= max_side
        if 0 < y0 and y1 < shape[1] and 0 < x0 and x1 < shape[2]:  # not clipped by the border: a square
            assert y1 - y0 == x1 - x0
            sides.append(y1 - y0)
    assert min(sides) == 1 and max(sides) == max_side


def test_cutout_in_the_normalised_view_is_gray():
    spec = get_spec("cifar100")
    view = build_transform("cifar100", "strong_fixmatch")
    mean, std = torch.tensor(spec.mean).view(-1, 1, 1), torch.tensor(spec.std).view(-1, 1, 1)
    for seed in range(50):
        torch.manual_seed(seed)
        pixels = ((view(torch.zeros(3, 32, 32, dtype=torch.uint8)) * std + mean) * 255).round().to(torch.uint8)
        y0, y1, x0, x1 = _cutout_box(pixels.permute(1, 2, 0).numpy())
        assert y1 - y0 <= 16 and x1 - x0 <= 16
        assert (pixels[:, y0:y1, x0:x1] == torch.tensor(FIXMATCH_CUTOUT_FILL, dtype=torch.uint8).view(-1, 1, 1)).all()


def test_cutout_matches_the_official_pil_rectangle():
    """``fixmatch_cutout`` paints what the official ``CutoutAbs`` draws with ``ImageDraw.rectangle``."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        w, h = int(rng.integers(4, 40)), int(rng.integers(4, 40))
        fraction, u_x, u_y = rng.random() * 0.5, rng.random(), rng.random()
        a = fixmatch_cutout(np.zeros((h, w, 3), dtype=np.uint8), fraction, u_x, u_y)
        # the official code, with its np.random.uniform(w) (= uniform(low=w, high=1)) draws given as u_x, u_y
        img, v = Image.new("RGB", (w, h)), fraction * w
        x0 = int(max(0, (w + (1 - w) * u_x) - v / 2.0))
        y0 = int(max(0, (h + (1 - h) * u_y) - v / 2.0))
        ImageDraw.Draw(img).rectangle((x0, y0, min(w, x0 + v), min(h, y0 + v)), FIXMATCH_CUTOUT_FILL)
        assert np.array_equal(a, np.asarray(img))


PIL_REFERENCE = {
    "AutoContrast": lambda img, v: ImageOps.autocontrast(img),
    "Equalize": lambda img, v: ImageOps.equalize(img),
    "Posterize": lambda img, v: ImageOps.posterize(img, max(1, int(v))),
    "Solarize": lambda img, v: ImageOps.solarize(img, v),
}


@pytest.mark.parametrize("name", sorted(PIL_REFERENCE))
def test_numpy_ops_equal_pil_imageops(name):
    op, low, high = next((op, lo, hi) for n, op, lo, hi in FIXMATCH_OPS if n == name)
    rng = np.random.default_rng(4)
    for trial in range(400):
        shape = (int(rng.integers(1, 33)), int(rng.integers(1, 33)), (1, 3)[trial % 2])
        kind = trial % 4
        if kind == 0:
            a = rng.integers(0, 256, shape, dtype=np.uint8)
        elif kind == 1:  # a narrow range
            lo = int(rng.integers(0, 250))
            a = rng.integers(lo, lo + 6, shape, dtype=np.uint8)
        elif kind == 2:  # two values, or nearly constant
            a = rng.choice(np.array([3, 200], dtype=np.uint8), shape)
            a[..., 0] = 17
        else:  # skewed histogram
            a = (rng.geometric(0.3, shape) % 256).astype(np.uint8)
        v = low + (high - low) * rng.random()
        if trial % 5 == 0:  # the ends of the range, and whole thresholds for Solarize
            v = float(rng.integers(0, 257)) if name == "Solarize" else (low, high)[trial % 2]
        got = op(a, v)
        img = Image.fromarray(a[..., 0] if shape[2] == 1 else a)
        expected = np.asarray(PIL_REFERENCE[name](img, v)).reshape(shape)
        assert got.dtype == np.uint8 and np.array_equal(got, expected), (name, shape, v)


def test_op_list_is_the_official_augment_list():
    assert [(n, lo, hi) for n, _, lo, hi in FIXMATCH_OPS] == [
        ("AutoContrast", 0, 1), ("Brightness", 0.05, 0.95), ("Color", 0.05, 0.95), ("Contrast", 0.05, 0.95),
        ("Equalize", 0, 1), ("Identity", 0, 1), ("Posterize", 4, 8), ("Rotate", -30, 30), ("Sharpness", 0.05, 0.95),
        ("ShearX", -0.3, 0.3), ("ShearY", -0.3, 0.3), ("Solarize", 0, 256), ("TranslateX", -0.3, 0.3),
        ("TranslateY", -0.3, 0.3)]
    # every op keeps shape and dtype, on RGB and gray images
    for c in (1, 3):
        a = np.random.default_rng(c).integers(0, 256, (32, 32, c), dtype=np.uint8)
        for _, op, lo, hi in FIXMATCH_OPS:
            for v in (lo, hi):
                out = op(a, v)
                assert out.shape == a.shape and out.dtype == np.uint8


def test_the_old_strong_view_is_unchanged():
    from torchvision.transforms import v2

    from lskd.data.registry import get_builder

    spec = get_spec("cifar100")
    old = v2.Compose([v2.RandAugment(num_ops=2), *get_builder("cifar100").train_ops(),
                      NormalizeToFloat(spec.mean, spec.std), cutout()])
    img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    for seed in range(5):
        torch.manual_seed(seed)
        a = build_transform("cifar100", "strong")(img)
        torch.manual_seed(seed)
        assert torch.equal(a, old(img))


# ---------------------------------------------------------------- through the engine
def test_engine_trains_official_mlkd_on_the_fixmatch_view(tmp_path):
    from lskd.engine import DataSpec, OptimSpec, RunSpec, train_one
    from lskd.engine.io import read_json
    from lskd.models import SMALL_MODELS

    def spec(model: str, method: str, teacher=None, **hparams) -> RunSpec:
        return RunSpec(model=model, data=DataSpec(name="digits", train_subset=200, test_subset=100),
                       optim=OptimSpec(epochs=1, batch_size=32, lr=0.05, milestones=[1], gamma=0.5),
                       method=method, hparams=hparams, teacher_dir=str(teacher) if teacher else None, seed=0,
                       threads=1, cell=method)

    train_one(spec(SMALL_MODELS[0], "ce"), tmp_path / "teacher", progress=False)
    student = spec(SMALL_MODELS[1], "mlkd", tmp_path / "teacher", temperature=2.0, transform="zscore",
                   kd_weight=9.0, weighting="official", strong_view="strong_fixmatch")
    for run_dir in ("a", "b"):
        metrics = train_one(student, tmp_path / run_dir, progress=False)
        assert 0 <= metrics["last"]["top1"] <= 100
    record = read_json(tmp_path / "a/spec.json")
    assert record["resolved"]["views"] == ["train", "strong_fixmatch"]
    assert record["resolved"]["hparams"]["weighting"] == "official"
    assert (tmp_path / "a/metrics.json").read_bytes() == (tmp_path / "b/metrics.json").read_bytes()
