"""Registry of distillation methods, filled by the ``@register_method`` decorator: the one source of truth for a
method's name, hyper-parameters (each class's declared :class:`~lskd.losses.base.HParam`: default and meaning) and
properties.

Every module of the :mod:`lskd.losses` package is imported when the package is (so a new method is one new module,
no list to edit), and so are the modules named in ``$LSKD_PLUGINS`` (comma-separated import paths): a method kept
outside lskd registers the same way and runs in ``lskd distill`` and the pipeline alike.
"""

from __future__ import annotations

import difflib
import importlib
import os
from typing import Any, TypeVar

from lskd.losses.base import DistillationMethod

_METHODS: dict[str, type[DistillationMethod]] = {}
#: Environment variable naming extra modules that register methods (e.g. ``mylab.losses.toy``).
PLUGINS_ENV = "LSKD_PLUGINS"

M = TypeVar("M", bound=type[DistillationMethod])


def register_method(name: str):
    """Class decorator that registers a :class:`DistillationMethod` under ``name``."""

    def wrap(cls: M) -> M:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is already registered by {_METHODS[name].__module__}")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return wrap


def load_plugins() -> None:
    """Import the modules listed in ``$LSKD_PLUGINS`` (once each; Python caches imports)."""
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(f"${PLUGINS_ENV} names {module!r}, which cannot be imported: {err}") from err


def available_methods() -> list[str]:
    """Names of the registered methods."""
    load_plugins()
    return sorted(_METHODS)


def method_class(name: str) -> type[DistillationMethod]:
    """The class registered under ``name``; unknown names raise with the allowed values and a suggestion."""
    if name not in _METHODS:
        load_plugins()
    if name not in _METHODS:
        hint = difflib.get_close_matches(name, _METHODS, n=1)
        did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"unknown method {name!r}{did_you_mean}; allowed: {', '.join(available_methods())}")
    return _METHODS[name]


def method_hparams(name: str) -> dict[str, Any]:
    """The hyper-parameters a method accepts, with their defaults (its class's :meth:`declared`)."""
    return {key: hp.default for key, hp in method_class(name).declared().items()}


def method_info(name: str) -> dict[str, Any]:
    """Everything lskd knows of a method, read from its class: hyper-parameters (default and meaning), the paper,
    the logit transforms it accepts, its input views, and whether it needs a teacher or learns its temperature."""
    from lskd.losses.transforms import TRANSFORMS

    cls = method_class(name)
    return {
        "name": name,
        "summary": cls.summary(),
        "paper": cls.paper,
        "hparams": {k: {"default": hp.default, "help": hp.help} for k, hp in cls.declared().items()},
        "transforms": tuple(cls.transforms or TRANSFORMS) if cls.needs_teacher else (),
        "views": tuple(cls.views),
        "needs_teacher": cls.needs_teacher,
        "learns_temperature": cls.learns_temperature,
    }


def distillation_methods() -> list[str]:
    """The registered methods that distil from a teacher (what ``grid.methods`` may name)."""
    return [m for m in available_methods() if method_class(m).needs_teacher]


def build_method(name: str, **hparams: Any) -> DistillationMethod:
    """Build a registered method (``lskd list`` names them) with keyword hyper-parameters.

    Unknown hyper-parameters raise ``TypeError`` naming the accepted ones, before any compute.
    """
    accepted = method_hparams(name)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise TypeError(f"method {name!r} does not take {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    return method_class(name)(**hparams)
