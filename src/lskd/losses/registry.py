"""Registry of distillation methods, filled by the ``@register_method`` decorator."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, TypeVar

from lskd.losses.base import DistillationMethod

_METHODS: dict[str, type[DistillationMethod]] = {}

M = TypeVar("M", bound=type[DistillationMethod])


def register_method(name: str):
    """Class decorator that registers a :class:`DistillationMethod` under ``name``."""

    def wrap(cls: M) -> M:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is already registered")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return wrap


def available_methods() -> list[str]:
    """Names of the registered methods."""
    return sorted(_METHODS)


def method_class(name: str) -> type[DistillationMethod]:
    """The class registered under ``name``; unknown names raise with the allowed values and a suggestion."""
    if name not in _METHODS:
        hint = difflib.get_close_matches(name, _METHODS, n=1)
        did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"unknown method {name!r}{did_you_mean}; allowed: {', '.join(available_methods())}")
    return _METHODS[name]


def method_hparams(name: str) -> dict[str, Any]:
    """The hyper-parameters a method accepts, with their defaults."""
    params = inspect.signature(method_class(name).__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self"}


def build_method(name: str, **hparams: Any) -> DistillationMethod:
    """Build method ``name`` (``kd``, ``dkd``, ``ctkd``, ``mlkd``, ``ce``) with keyword hyper-parameters.

    Unknown hyper-parameters raise ``TypeError`` naming the accepted ones, before any compute.
    """
    accepted = method_hparams(name)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise TypeError(f"method {name!r} does not take {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    return method_class(name)(**hparams)
