"""Usage vouchers: build and sign (consumer), verify and batch (node), exactly as UsageMeter does.

A voucher (v2) carries CUMULATIVE counters for one (credential, node, payer) channel, the payer
whose escrow pays, and `issued_at`, the time of the newest call covered: the meter judges every
authority at `issued_at` and pays the voucher while issued_at <= now <= issued_at +
settlement_window. The consumer keeps its counters in a small SQLite file and advances them
*before* handing out a signature, so a crash or restart can never sign a lower or conflicting
voucher. The node verifies each voucher off-chain with the same rules as the contract (EIP-712
domain, low-s, v in {27, 28}, monotonic counters, deadline, window) before serving, keeps only
the latest voucher per channel, and ingests batches (as the node or its operator) well inside
the settlement window.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2
UINT64 = 2**64 - 1

VOUCHER_TYPES = {
    "Voucher": [
        {"name": "credential_id", "type": "uint256"},
        {"name": "node", "type": "address"},
        {"name": "payer", "type": "address"},
        {"name": "purpose", "type": "uint256"},
        {"name": "cumulative_mu", "type": "uint256"},
        {"name": "cumulative_calls", "type": "uint64"},
        {"name": "cumulative_failures", "type": "uint64"},
        {"name": "cumulative_latency_ms", "type": "uint64"},
        {"name": "node_price_per_mu", "type": "uint256"},
        {"name": "issued_at", "type": "uint64"},
        {"name": "deadline", "type": "uint64"},
    ]
}
VOUCHER_TYPE_STRING = (
    "Voucher(uint256 credential_id,address node,address payer,uint256 purpose,uint256 cumulative_mu,"
    "uint64 cumulative_calls,uint64 cumulative_failures,uint64 cumulative_latency_ms,uint256 node_price_per_mu,"
    "uint64 issued_at,uint64 deadline)"
)
VOUCHER_TYPEHASH = keccak(text=VOUCHER_TYPE_STRING)


class VoucherError(ValueError):
    """A voucher that the meter would refuse; the message says why and what to do."""


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one UsageMeter deployment."""

    chain_id: int
    verifying_contract: str
    name: str = "CodexField UsageMeter"
    version: str = "1"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }

    @classmethod
    def of(cls, meter: Any) -> "Domain":
        """The domain of a deployed meter (an ape contract instance)."""
        _, name, version, chain_id, verifying, _, _ = meter.eip712Domain()
        return cls(chain_id=int(chain_id), verifying_contract=str(verifying), name=name, version=version)


@dataclass(frozen=True)
class Voucher:
    credential_id: int
    node: str
    payer: str  # whose escrow pays: the credential holder at `issued_at`
    purpose: int
    cumulative_mu: int
    cumulative_calls: int
    cumulative_failures: int
    cumulative_latency_ms: int
    node_price_per_mu: int
    issued_at: int  # time of the newest call covered (authority is judged then)
    deadline: int

    def as_tuple(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))

    def as_message(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["node"] = to_checksum_address(self.node)
        d["payer"] = to_checksum_address(self.payer)
        return d

    def counters(self) -> tuple[int, int, int, int]:
        return (self.cumulative_mu, self.cumulative_calls, self.cumulative_failures, self.cumulative_latency_ms)

    def channel(self) -> tuple[int, str, str]:
        return (self.credential_id, to_checksum_address(self.node), to_checksum_address(self.payer))


def signable(voucher: Voucher, domain: Domain):
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                **VOUCHER_TYPES,
            },
            "primaryType": "Voucher",
            "domain": domain.as_dict(),
            "message": voucher.as_message(),
        }
    )


def digest(voucher: Voucher, domain: Domain) -> bytes:
    """The EIP-712 digest the contract computes (`UsageMeter.voucher_digest`)."""
    msg = signable(voucher, domain)
    return keccak(b"\x19" + msg.version + msg.header + msg.body)


def sign_voucher(voucher: Voucher, domain: Domain, private_key: bytes | str) -> bytes:
    """A 65-byte r ‖ s ‖ v signature (low s, v in {27, 28}) over the voucher's EIP-712 digest."""
    signed = Account.sign_message(signable(voucher, domain), private_key)
    return signed.signature


def recover_signer(voucher: Voucher, domain: Domain, signature: bytes) -> str:
    """The signer of `signature`, refusing what the contract refuses (high s, bad v, wrong length)."""
    if len(signature) != 65:
        raise VoucherError(f"a voucher signature has 65 bytes (r, s, v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise VoucherError(f"signature v must be 27 or 28, got {v}: re-sign with a standard Ethereum signer")
    if s == 0 or r == 0 or s > HALF_N:
        raise VoucherError("signature s is not in the lower half of the curve order (malleated): re-sign")
    return Account._recover_hash(digest(voucher, domain), vrs=(v, r, s))


def verify_voucher(
    voucher: Voucher,
    signature: bytes,
    domain: Domain,
    *,
    holder: str,
    previous: tuple[int, int, int, int] = (0, 0, 0, 0),
    now: int | None = None,
    node: str | None = None,
    extra_signers: Iterable[str] = (),
    settlement_window: int | None = None,
    max_skew_s: int = 60,
) -> tuple[int, int, int, int]:
    """Check a voucher exactly as `UsageMeter._ingest` does before a node serves on it.

    `holder` is the credential's holder now (the voucher's payer must be it); `previous` is
    the channel's last accepted cumulative counters; `extra_signers` are `sigAuth` delegates
    of the payer (valid now) the caller already resolved; with `settlement_window` the voucher
    must still be payable, and its `issued_at` at most `max_skew_s` ahead of `now`. Returns
    the deltas (mu, calls, failures, latency_ms); raises VoucherError with an actionable
    message otherwise.
    """
    now = int(time.time()) if now is None else now
    if node is not None and to_checksum_address(voucher.node) != to_checksum_address(node):
        raise VoucherError(f"voucher is for node {voucher.node}, not this node {node}")
    if to_checksum_address(voucher.payer) != to_checksum_address(holder):
        raise VoucherError(f"voucher payer {voucher.payer} is not the credential holder {holder}")
    if voucher.deadline < now:
        raise VoucherError("voucher deadline has passed: sign a new voucher with a later deadline")
    if voucher.issued_at > now + max_skew_s:
        raise VoucherError(f"voucher issued_at {voucher.issued_at} is in the future (now {now}): check the clock")
    if settlement_window is not None and now > voucher.issued_at + settlement_window:
        raise VoucherError(f"voucher issued_at {voucher.issued_at} is past the {settlement_window}s settlement window")
    if voucher.cumulative_failures > voucher.cumulative_calls:
        raise VoucherError("cumulative failures exceed cumulative calls")
    cur = voucher.counters()
    if all(c <= p for c, p in zip(cur, previous)):
        raise VoucherError("voucher adds nothing over the last accepted one (replayed or stale)")
    if any(c < p for c, p in zip(cur, previous)):
        raise VoucherError(f"cumulative counters decreased: last accepted {previous}, got {cur}")
    signer = recover_signer(voucher, domain, signature)
    allowed = {to_checksum_address(voucher.payer), *(to_checksum_address(a) for a in extra_signers)}
    if to_checksum_address(signer) not in allowed:
        raise VoucherError(f"voucher signed by {signer}, not by the payer {voucher.payer} or its sigAuth delegates")
    return tuple(c - p for c, p in zip(cur, previous))  # type: ignore[return-value]


class ConsumerLedger:
    """Durable cumulative counters per (credential, node, payer): a restart never signs lower or conflicting.

    The counters are advanced and committed in one SQLite transaction *before* the signature is
    returned, so the file always holds at least what was ever signed. `payer` defaults to the
    signing key's address; a contract wallet passes its own address and signs with a `sigAuth`
    delegate key it added in the IdentityRegistry.
    """

    def __init__(self, path: str | Path, domain: Domain, private_key: bytes | str, *, payer: str | None = None):
        self.path = Path(path)
        self.domain = domain
        self._key = private_key
        self.payer = to_checksum_address(payer or Account.from_key(private_key).address)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS channels_v2 (chain_id INTEGER, meter TEXT, credential_id TEXT, node TEXT,"
                " payer TEXT, mu TEXT, calls INTEGER, failures INTEGER, latency_ms INTEGER, updated_at INTEGER,"
                " PRIMARY KEY (chain_id, meter, credential_id, node, payer))"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _key_of(self, credential_id: int, node: str) -> tuple:
        return (self.domain.chain_id, self.domain.verifying_contract.lower(), str(credential_id), node.lower(),
                self.payer.lower())

    def counters(self, credential_id: int, node: str) -> tuple[int, int, int, int]:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT mu, calls, failures, latency_ms FROM channels_v2 WHERE chain_id=? AND meter=? AND"
                " credential_id=? AND node=? AND payer=?",
                self._key_of(credential_id, node),
            ).fetchone()
        return (int(row[0]), row[1], row[2], row[3]) if row else (0, 0, 0, 0)

    def next_voucher(
        self,
        credential_id: int,
        node: str,
        *,
        mu: int,
        calls: int = 1,
        failures: int = 0,
        latency_ms: int = 0,
        purpose: int,
        node_price_per_mu: int,
        deadline: int,
        issued_at: int | None = None,
    ) -> tuple[Voucher, bytes]:
        """Advance the channel by the given deltas and sign the new cumulative voucher.

        `issued_at` (default: now) is the time of the newest call the voucher covers.
        """
        issued_at = int(time.time()) if issued_at is None else issued_at
        if min(mu, calls, failures, latency_ms) < 0:
            raise VoucherError("usage deltas cannot be negative")
        with self._lock, closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                key = self._key_of(credential_id, node)
                row = db.execute(
                    "SELECT mu, calls, failures, latency_ms FROM channels_v2 WHERE chain_id=? AND meter=? AND"
                    " credential_id=? AND node=? AND payer=?",
                    key,
                ).fetchone()
                prev = (int(row[0]), row[1], row[2], row[3]) if row else (0, 0, 0, 0)
                cur = (prev[0] + mu, prev[1] + calls, prev[2] + failures, prev[3] + latency_ms)
                if max(cur[1:]) > UINT64:
                    raise VoucherError("a cumulative counter would overflow uint64: open a new credential")
                db.execute(
                    "INSERT INTO channels_v2 VALUES (?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT (chain_id, meter, credential_id, node, payer)"
                    " DO UPDATE SET mu=excluded.mu, calls=excluded.calls, failures=excluded.failures,"
                    " latency_ms=excluded.latency_ms, updated_at=excluded.updated_at",
                    (*key, str(cur[0]), cur[1], cur[2], cur[3], int(time.time())),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        voucher = Voucher(
            credential_id=credential_id,
            node=to_checksum_address(node),
            payer=self.payer,
            purpose=purpose,
            cumulative_mu=cur[0],
            cumulative_calls=cur[1],
            cumulative_failures=cur[2],
            cumulative_latency_ms=cur[3],
            node_price_per_mu=node_price_per_mu,
            issued_at=issued_at,
            deadline=deadline,
        )
        return voucher, sign_voucher(voucher, self.domain, self._key)


class VoucherBatcher:
    """Node side: keep the latest voucher per channel and ingest when big or old enough.

    `submit(vouchers, signatures)` is called with at most `max_batch` entries; it normally wraps
    `meter.ingest(...)`. Only the newest voucher of each channel is kept, since it settles
    everything before it.
    """

    def __init__(
        self,
        submit: Callable[[list[tuple], list[bytes]], Any],
        *,
        max_batch: int = 32,
        max_age_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not 1 <= max_batch <= 64:
            raise ValueError("max_batch must be between 1 and 64 (the meter's batch limit)")
        self._submit = submit
        self.max_batch = max_batch
        self.max_age_s = max_age_s
        self._clock = clock
        self._pending: dict[tuple[int, str, str], tuple[Voucher, bytes]] = {}
        self._oldest: float | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, voucher: Voucher, signature: bytes) -> Any:
        """Queue a verified voucher; returns the submit result if this triggered a flush."""
        with self._lock:
            key = voucher.channel()
            old = self._pending.get(key)
            if old is None or voucher.counters() >= old[0].counters():
                self._pending[key] = (voucher, signature)
            if self._oldest is None:
                self._oldest = self._clock()
            due = len(self._pending) >= self.max_batch
        return self.flush() if due else None

    def due(self) -> bool:
        return self._oldest is not None and (self._clock() - self._oldest) >= self.max_age_s

    def flush(self) -> Any:
        """Submit everything queued (in chunks of `max_batch`)."""
        with self._lock:
            items = list(self._pending.values())
            self._pending.clear()
            self._oldest = None
        result = None
        for i in range(0, len(items), self.max_batch):
            chunk = items[i : i + self.max_batch]
            result = self._submit([v.as_tuple() for v, _ in chunk], [s for _, s in chunk])
        return result
