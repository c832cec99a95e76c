"""Shared helpers of the LicenseManager tests (terms builder, constants)."""

from __future__ import annotations

from codexfield import scopes

DAY = 86_400
WINDOW = DAY  # the UsageMeter settlement window (transfer cooldown)
PRICE = 2_000  # 0.002 USDC per MU (6 decimals)
UPFRONT = 10_000_000  # 10 USDC


def terms_tuple(capsule_id: int, token, **kw) -> tuple:
    """The Terms struct as a tuple in DESIGN 3.3 order, with readable defaults."""
    t = dict(
        capsule_id=capsule_id,
        payment_token=str(token),
        price_per_mu=PRICE,
        upfront_fee=UPFRONT,
        meter=b"\x11" * 32,
        duration=30 * DAY,
        mu_quota=0,
        rate_mu=0,
        rate_period=0,
        scope=scopes.mask_of(["research", "inference"]),
        derivative_share_bps=0,
        revocation=0,
        notice_period=0,
        max_credentials=0,
        transferable=False,
        text_hash=b"\x22" * 32,
    )
    unknown = set(kw) - set(t)
    assert not unknown, unknown
    t.update(kw)
    return tuple(t.values())


FIELDS = (
    "capsule_id payment_token price_per_mu upfront_fee meter duration mu_quota rate_mu rate_period scope "
    "derivative_share_bps revocation notice_period max_credentials transferable text_hash"
).split()
