"""Synthetic decoded events for handler tests of contracts not deployed here (LicenseManager,
UsageMeter, RoyaltyRouter, AccessStaking): field names and types per DESIGN §3 and interfaces/."""

from __future__ import annotations

import hashlib

from eth_utils import to_checksum_address

from codexfield.indexer.abi import DecodedEvent, EventDecoder
from codexfield.indexer.ingest import Indexer

CHAIN = 31337
ADDR = {
    name: to_checksum_address("0x" + d * 20)
    for name, d in (
        ("CapsuleRegistry", "11"),
        ("LicenseManager", "22"),
        ("UsageMeter", "33"),
        ("RoyaltyRouter", "44"),
        ("AccessStaking", "55"),
        ("Reputation", "66"),
    )
}
USDC = to_checksum_address("0x" + "aa" * 20)
ALICE, BOB, CAROL, NODE = (to_checksum_address("0x" + c * 40) for c in ("a", "b", "c", "d"))


def block_hash(n: int) -> str:
    """The synthetic hash of block `n`."""
    return "0x" + hashlib.sha256(f"{n}".encode()).hexdigest()


def decoded_events(n: int, events) -> list[DecodedEvent]:
    """`events` — (contract, event name, args) — as the decoder would give them in block `n`."""
    return [
        DecodedEvent(
            contract=c,
            name=name,
            address=ADDR[c],
            block_number=n,
            block_hash=block_hash(n),
            log_index=i,
            tx_hash="0x" + "00" * 32,
            args=args,
        )
        for i, (c, name, args) in enumerate(events)
    ]


def capsule_id(n: int) -> str:
    return f"eip155:{CHAIN}/erc721:{ADDR['CapsuleRegistry']}/{n}"


class FakeSource:
    def block_number(self):
        return 0


def make_indexer(engine, epoch_length: int | None = 100, genesis=0, chain_id=CHAIN) -> Indexer:
    return Indexer(
        engine,
        FakeSource(),
        chain_id,
        ADDR,
        decoder=EventDecoder(ADDR, abis={}),
        epoch_length=epoch_length,
        genesis=genesis,
        start_block=1,
    )


class Feed:
    """Apply synthetic events block by block through the real `Indexer.apply` path."""

    def __init__(self, engine, **kw):
        self.engine = engine
        self.idx = make_indexer(engine, **kw)
        self.block = 0

    def block_of(self, events: list[tuple[str, str, dict]], timestamp: int | None = None) -> int:
        start = self.idx.checkpoint() + 1
        self.block = max(self.block + 1, start)
        n = self.block
        h = block_hash(n)
        decoded = decoded_events(n, events)
        headers = {
            n: {"hash": h, "parentHash": "0x" + "00" * 32, "timestamp": timestamp if timestamp is not None else n * 10}
        }
        self.idx.apply(decoded, headers, start, n, n)
        return n


def minted(
    n: int,
    creator: str = ALICE,
    parents=(),
    kind: int = 2,
    previous: int = 0,
    version: int = 1,
    content_hash: bytes | None = None,
    uri: str = "",
):
    return (
        "CapsuleRegistry",
        "CapsuleMinted",
        {
            "capsule_id": n,
            "creator": creator,
            "kind": kind,
            "content_hash": content_hash or hashlib.sha256(f"capsule {n}".encode()).digest(),
            "previous_id": previous,
            "version": version,
            "parents": [tuple(p) for p in parents],
            "uri": uri,
        },
    )


def state(n: int, s: int, by: str = ALICE):
    return ("CapsuleRegistry", "CapsuleStateChanged", {"capsule_id": n, "state": s, "by": by, "reason": b"\x00" * 32})


def terms(terms_id: int, capsule: int, price: int = 5, scope: int = 0b1000110, upfront: int = 0):
    return (
        "LicenseManager",
        "TermsCreated",
        {
            "terms_id": terms_id,
            "capsule_id": capsule,
            "payment_token": USDC,
            "price_per_mu": price,
            "upfront_fee": upfront,
            "meter": b"\x11" * 32,
            "duration": 0,
            "mu_quota": 0,
            "rate_mu": 0,
            "rate_period": 0,
            "scope": scope,
            "derivative_share_bps": 1000,
            "revocation": 3,
            "notice_period": 0,
            "max_credentials": 0,
            "transferable": False,
            "text_hash": b"\x22" * 32,
        },
    )


def issued(cred: int, terms_id: int, capsule: int, holder: str = BOB):
    return (
        "LicenseManager",
        "CredentialIssued",
        {"credential_id": cred, "terms_id": terms_id, "capsule_id": capsule, "holder": holder, "expires_at": 0},
    )


def usage(
    cred: int,
    capsule: int,
    mu=10,
    calls=5,
    failures=1,
    latency=500,
    node=NODE,
    license_amount=50,
    payer: str = BOB,
    issued_at: int = 0,
    paid: bool = True,
):
    return (
        "UsageMeter",
        "UsageRecorded",
        {
            "credential_id": cred,
            "capsule_id": capsule,
            "node": node,
            "payer": payer,
            "issued_at": issued_at,
            "delta_mu": mu,
            "delta_calls": calls,
            "delta_failures": failures,
            "delta_latency_ms": latency,
            "license_amount": license_amount,
            "node_amount": 20,
            "protocol_fee": 1,
            "paid": paid,
        },
    )


def meter_configured(
    epoch_length: int = 100, genesis: int = 0, settlement_window: int = 86400, withdrawal_thaw: int = 3 * 86400
):
    return (
        "UsageMeter",
        "MeterConfigured",
        {
            "epoch_length": epoch_length,
            "genesis": genesis,
            "settlement_window": settlement_window,
            "withdrawal_thaw": withdrawal_thaw,
        },
    )


def credited(capsule: int, amount: int, payer: str = BOB):
    return (
        "RoyaltyRouter",
        "RoyaltyCredited",
        {"capsule_id": capsule, "token": USDC, "amount": amount, "payer": payer},
    )


def propagated(capsule: int, amount: int, to_parents: int):
    return (
        "RoyaltyRouter",
        "RoyaltyPropagated",
        {
            "capsule_id": capsule,
            "token": USDC,
            "amount": amount,
            "to_parents": to_parents,
            "to_owner": amount - to_parents,
        },
    )


def claimed(capsule: int, amount: int, owner: str = ALICE):
    return (
        "RoyaltyRouter",
        "RoyaltyClaimed",
        {"capsule_id": capsule, "token": USDC, "owner": owner, "to": owner, "amount": amount},
    )


def rated(capsule: int, cred: int, stars: int, rater: str = BOB):
    return (
        "Reputation",
        "Rated",
        {"capsule_id": capsule, "credential_id": cred, "rater": rater, "stars": stars, "review_hash": b"\x01" * 32},
    )


def attested(aid: int, capsule: int, passed=True, valid_until=0):
    return (
        "Reputation",
        "Attested",
        {
            "attestation_id": aid,
            "capsule_id": capsule,
            "auditor": CAROL,
            "standard": b"\x05" * 32,
            "passed": passed,
            "report_hash": b"\x06" * 32,
            "valid_until": valid_until,
        },
    )
