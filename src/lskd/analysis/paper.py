"""The paper's published numbers (Sun et al., CVPR 2024), shipped as package data in ``lskd/data/paper/``.

Every number is the paper's **best test accuracy over epochs, averaged over 4 trials** (:data:`PAPER_PROTOCOL`);
compare it with lskd's best-epoch column, not the last-epoch headline. Each row keeps the paper's table in its
``source`` column. ``logit_standardization`` (bool) is mapped to lskd's ``transform`` (``zscore`` / ``none``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import pandas as pd

PAPER_PROTOCOL = "best test accuracy over epochs, averaged over 4 trials"
PAPER_FILES = {
    "results": "paper_results.csv",
    "ablation": "paper_ablation_table4.csv",
    "teachers": "paper_teachers_table5.csv",
}
KEY = ["dataset", "teacher", "student", "method", "transform"]

#: timm names of ImageNet models → the paper's names (after dropping a pretrained tag like ``.tv_in1k``).
IMAGENET_NAMES: dict[str, str] = {"mobilenetv1_100": "mobilenet_v1", "mobilenetv2_100": "mobilenet_v2"}


@lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    with files("lskd").joinpath("data", "paper", PAPER_FILES[name]).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def _with_transform(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    flag = df["logit_standardization"].astype(str).str.lower().map({"true": True, "false": False})
    df["transform"] = flag.map({True: "zscore", False: "none"})
    return df


def paper_results() -> pd.DataFrame:
    """Tables 1–3: dataset, teacher, student, teacher_top1, student_top1, method, logit_standardization, top1,
    top5 (ImageNet only), source, transform."""
    return _with_transform(_read("results"))


def paper_ablation() -> pd.DataFrame:
    """Table 4: resnet32x4 → resnet8x4 KD at base temperature 2, CE 0.1; transform × kd_weight → top1."""
    return _read("ablation").rename(columns={"base_temperature": "temperature"}).copy()


def paper_teachers() -> pd.DataFrame:
    """Table 5: six teachers → wrn_16_2, KD and DKD with / without logit standardization."""
    return _with_transform(_read("teachers"))


def paper_main_rows() -> pd.DataFrame:
    """Tables 1–3 plus the Table 5 rows whose (dataset, teacher, student, method, transform) is not in them.

    Columns: :data:`KEY`, ``top1``, ``top5``, ``teacher_top1``, ``student_top1`` (NaN where the table has none),
    ``source``.
    """
    cols = [*KEY, "top1", "top5", "teacher_top1", "student_top1", "source"]
    main, extra = paper_results(), paper_teachers()
    seen = set(map(tuple, main[KEY].to_numpy()))
    extra = extra[[tuple(r) not in seen for r in extra[KEY].to_numpy()]]
    out = pd.concat([main.reindex(columns=cols), extra.reindex(columns=cols)], ignore_index=True)
    return out.sort_values(KEY, kind="mergesort").reset_index(drop=True)


def to_paper_model(name: str | None) -> str | None:
    """lskd / timm model name → the paper's: drop a ``.tag``, then :func:`lskd.models.paper_name`, then
    :data:`IMAGENET_NAMES` (``cifar_vgg13`` → ``vgg13``, ``resnet34.tv_in1k`` → ``resnet34``)."""
    if name is None or (isinstance(name, float) and name != name):
        return None
    from lskd.models import paper_name

    base = str(name).split(".", 1)[0]
    return IMAGENET_NAMES.get(base, paper_name(base))
