"""Usage vouchers for tests: a `codexfield.sdk.metering.Voucher` with defaults, and its signature.

v = voucher(credential, node, payer, mu=10, issued_at=chain.pending_timestamp - 1)
meter.ingest([v.as_tuple()], [sign(v, Domain.of(meter), consumer)], sender=node)
"""

from __future__ import annotations

from typing import Any

from codexfield import scopes
from codexfield.sdk.metering import Domain, Voucher, sign_voucher

from support.signers import private_key

INFERENCE = scopes.mask_of(["inference"])
NODE_PRICE = 2  # token units per MU the node charges (the meter suite's default)
LIFETIME = 10**8  # seconds a voucher stays valid after `issued_at` unless `deadline` is given


def voucher(
    credential_id: int,
    node: Any,
    payer: Any,
    mu: int,
    calls: int = 1,
    failures: int = 0,
    latency: int = 10,
    *,
    purpose: int = INFERENCE,
    node_price: int = NODE_PRICE,
    issued_at: int,
    deadline: int | None = None,
) -> Voucher:
    """The cumulative counters of channel (credential, node, payer) signed at `issued_at`."""
    return Voucher(
        credential_id=int(credential_id),
        node=str(getattr(node, "address", node)),
        payer=str(getattr(payer, "address", payer)),
        purpose=purpose,
        cumulative_mu=mu,
        cumulative_calls=calls,
        cumulative_failures=failures,
        cumulative_latency_ms=latency,
        node_price_per_mu=node_price,
        issued_at=issued_at,
        deadline=issued_at + LIFETIME if deadline is None else deadline,
    )


def sign(v: Voucher, domain: Domain, key: Any) -> bytes:
    """The payer's EIP-712 signature of `v` (key: an ape test account, a LocalAccount or raw bytes)."""
    return sign_voucher(v, domain, private_key(key))
