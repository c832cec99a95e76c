"""Constants and builders shared by the UsageMeter tests (imported by conftest and tests)."""

from __future__ import annotations

from codexfield import scopes

PRICE = 3  # token units per MU (license)
NODE_PRICE = 2  # token units per MU (node)
FEE_BPS = 200
EPOCH = 3600
THAW = 3 * 86400
WINDOW = 86400  # settlement window (< THAW)


def terms_tuple(capsule_id, token, *, price=PRICE, upfront=0, duration=0, quota=0, rate_mu=0, rate_period=0,
                scope=None, derivative_share_bps=0, revocation=3, notice=0, max_credentials=0, transferable=False):
    scope = scopes.mask_of(["research", "inference", "commercial"]) if scope is None else scope
    return (capsule_id, token, price, upfront, b"\x11" * 32, duration, quota, rate_mu, rate_period, scope,
            derivative_share_bps, revocation, notice, max_credentials, transferable, b"\x22" * 32)
