"""Constants of the LicenseManager tests; the terms builder is tests/support/terms.py (preset LICENSE)."""

from __future__ import annotations

from functools import partial

from support.terms import DAY, FIELDS, LICENSE
from support.terms import terms_tuple as _terms_tuple

WINDOW = DAY  # the UsageMeter settlement window (transfer cooldown)
PRICE = LICENSE["price_per_mu"]  # 0.002 USDC per MU (6 decimals)
UPFRONT = LICENSE["upfront_fee"]  # 10 USDC

# `terms_tuple(capsule_id, token, **fields)`: the Terms tuple with this suite's defaults
terms_tuple = partial(_terms_tuple, base=LICENSE)

__all__ = ["DAY", "FIELDS", "PRICE", "UPFRONT", "WINDOW", "terms_tuple"]
