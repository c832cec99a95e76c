"""Constants and builders shared by the UsageMeter tests (imported by conftest and tests)."""

from __future__ import annotations

from functools import partial

from support.terms import METER
from support.terms import terms_tuple as _terms_tuple
from support.vouchers import NODE_PRICE  # noqa: F401  (re-exported to the meter tests)

PRICE = METER["price_per_mu"]  # token units per MU (license)
FEE_BPS = 200
EPOCH = 3600
THAW = 3 * 86400
WINDOW = 86400  # settlement window (< THAW)


# The meter suite's terms: tests/support's builder over the METER preset (price 3 per MU,
# research + inference + commercial, revocation 3).
terms_tuple = partial(_terms_tuple, base=METER)
