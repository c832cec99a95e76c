"""Licence terms for tests: a `codexfield.ldl.terms.Terms`, with readable defaults per suite.

    t = terms(capsule, usdc, price=3, upfront=0)          # short names, or the struct's own
    lm.create_terms(t.as_tuple(), sender=licensor)
    terms_tuple(capsule, usdc, base=LICENSE, duration=0)  # the ABI tuple directly

`base` is one of the presets below (or any mapping of Terms fields); keyword overrides win.
The short names (`price`, `upfront`, `quota`, `notice`) are those the meter and gas suites use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from codexfield import scopes
from codexfield.ldl.terms import Terms

DAY = 86_400
METER_TAG = b"\x11" * 32  # `Terms.meter`: an opaque meter id in the contract tests
TEXT_HASH = b"\x22" * 32  # `Terms.text_hash`: no licence text behind it in the contract tests

ALIASES = {
    "price": "price_per_mu",
    "upfront": "upfront_fee",
    "quota": "mu_quota",
    "notice": "notice_period",
    "token": "payment_token",
}
FIELDS = tuple(f.name for f in fields(Terms))

# Pay per MU, no upfront fee, revocable by licensor and arbiter: the system and meter tests.
OPEN: Mapping[str, Any] = {
    "price_per_mu": 2,
    "meter": METER_TAG,
    "scope": scopes.mask_of(["inference", "research"]),
    "revocation": 3,
    "text_hash": TEXT_HASH,
}
# tests/contracts/meter (meter_helpers.terms_tuple): 3 units per MU, commercial use too.
METER: Mapping[str, Any] = {**OPEN, "price_per_mu": 3, "scope": scopes.mask_of(["research", "inference", "commercial"])}
# tests/contracts/license: 0.002 USDC per MU, 10 USDC upfront, 30 days, irrevocable.
LICENSE: Mapping[str, Any] = {
    **OPEN,
    "price_per_mu": 2_000,
    "upfront_fee": 10_000_000,
    "duration": 30 * DAY,
    "revocation": 0,
}


def terms(capsule_id: int, token: Any, *, base: Mapping[str, Any] = OPEN, **overrides: Any) -> Terms:
    """Terms on `capsule_id` paid in `token` (an address or a contract): `base`, then `overrides`."""
    named = {ALIASES.get(k, k): v for k, v in overrides.items()}
    unknown = set(named) - set(FIELDS)
    if unknown:
        raise TypeError(f"no Terms field {sorted(unknown)}; fields: {', '.join(FIELDS)} (or {', '.join(ALIASES)})")
    values = {**base, **named}
    values.setdefault("payment_token", str(getattr(token, "address", token)))
    return Terms(capsule_id=int(capsule_id), **{k: v for k, v in values.items() if k != "capsule_id"})


def terms_tuple(capsule_id: int, token: Any, *, base: Mapping[str, Any] = OPEN, **overrides: Any) -> tuple:
    """`terms(...).as_tuple()`: what `create_terms` and `terms_id_of` take."""
    return terms(capsule_id, token, base=base, **overrides).as_tuple()
