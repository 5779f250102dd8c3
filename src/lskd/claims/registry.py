"""Registry of the paper's claims, filled by the ``@register_claim`` decorator: the one place a claim's id exists.

Every module of the :mod:`lskd.claims` package is imported with the package (so a new claim is one new module, no
list to edit), and so are the modules named in ``$LSKD_PLUGINS`` (:data:`lskd.losses.registry.PLUGINS_ENV`, the
variable that also loads methods): a claim kept outside lskd registers the same way and enters the audit, its
table and the report.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

from lskd.losses.registry import load_plugins

if TYPE_CHECKING:
    from lskd.claims.base import Claim

_CLAIMS: dict[str, Claim] = {}

C = TypeVar("C", bound="type[Claim]")


def register_claim(cls: C) -> C:
    """Class decorator: registers an instance of a :class:`~lskd.claims.base.Claim` subclass under its ``id``.

    One file per claim, so the ``id`` is the module's name unless the class sets one, and the ``statement`` (the
    paper's claim in a sentence or two) is the class docstring unless the class sets one."""
    if "id" not in vars(cls):
        cls.id = cls.__module__.rsplit(".", 1)[-1]
    if "statement" not in vars(cls):
        cls.statement = " ".join((cls.__doc__ or "").split())
    old = _CLAIMS.get(cls.id)
    if old is not None and type(old).__qualname__ != cls.__qualname__:
        raise ValueError(f"claim {cls.id!r} is already registered by {type(old).__module__}")
    _CLAIMS[cls.id] = cls()
    return cls


def registered_claims() -> list[Claim]:
    """Every registered claim (plugins loaded), in report order: by ``order``, then ``id``."""
    load_plugins()
    return sorted(_CLAIMS.values(), key=lambda c: (c.order, c.id))


def get_claim(claim_id: str) -> Claim:
    """The claim registered under ``claim_id``; an unknown id raises with the known ones and a suggestion."""
    if claim_id not in _CLAIMS:
        load_plugins()
    if claim_id not in _CLAIMS:
        hint = difflib.get_close_matches(claim_id, _CLAIMS, n=1)
        did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
        known = ", ".join(c.id for c in registered_claims())
        raise KeyError(f"unknown claim {claim_id!r}{did_you_mean}; known: {known}")
    return _CLAIMS[claim_id]


class _ClaimView(Mapping[str, "Claim"]):
    """Read-only ``id → claim`` view of the registry, in report order (always current: plugins included)."""

    def __getitem__(self, claim_id: str) -> Claim:
        return get_claim(claim_id)

    def __iter__(self) -> Iterator[str]:
        return iter([c.id for c in registered_claims()])

    def __len__(self) -> int:
        return len(registered_claims())

    def __repr__(self) -> str:
        return f"CLAIMS({', '.join(self)})"


#: ``id → claim`` in report order.
CLAIMS: Mapping[str, Claim] = _ClaimView()

__all__ = ["CLAIMS", "get_claim", "register_claim", "registered_claims"]
