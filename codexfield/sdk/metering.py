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

import functools
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

from codexfield.constants import METER_MAX_BATCH
from codexfield.sqlite import wal

try:  # safe-pysha3 (the `speed` extra): ~1.5 µs a hash
    from sha3 import keccak_256 as _keccak_256
except ImportError:  # pycryptodome, eth-hash's own backend, called without eth-utils' wrappers (~5 µs)
    from Crypto.Hash import keccak as _pycryptodome_keccak

    def _keccak_256(data: bytes) -> Any:
        return _pycryptodome_keccak.new(digest_bits=256, data=data)


def keccak(primitive: bytes = b"", *, text: str | None = None) -> bytes:
    """Keccak-256 of `primitive` (or of `text`, UTF-8): `eth_utils.keccak`'s result for bytes and
    text. eth-utils' version costs ~7.5 µs a hash in argument checks; a node and its consumers
    hash ~10 times a call (digests, acks, recoveries), so the vouchers' hot path hashes here."""
    return _keccak_256(text.encode() if text is not None else bytes(primitive)).digest()


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

try:  # libsecp256k1 directly (the `speed` extra): ~10x faster than eth-keys' Python layers
    import coincurve as _coincurve
except ImportError:  # pragma: no cover - eth-keys' own backend
    _coincurve = None

checksum = functools.lru_cache(maxsize=65_536)(to_checksum_address)
"""`to_checksum_address`, cached (a node sees the same few thousand addresses on every call)."""


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
            "verifyingContract": checksum(self.verifying_contract),
        }

    @classmethod
    def of(cls, meter: Any) -> Domain:
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
        return tuple(getattr(self, n) for n in _VOUCHER_FIELDS)

    def as_message(self) -> dict[str, Any]:
        d = {n: getattr(self, n) for n in _VOUCHER_FIELDS}
        d["node"] = checksum(self.node)
        d["payer"] = checksum(self.payer)
        return d

    def counters(self) -> tuple[int, int, int, int]:
        return (self.cumulative_mu, self.cumulative_calls, self.cumulative_failures, self.cumulative_latency_ms)

    def channel(self) -> tuple[int, str, str]:
        return (self.credential_id, checksum(self.node), checksum(self.payer))


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


EIP712_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_SEPARATORS: dict[Domain, bytes] = {}


def domain_separator(domain: Domain) -> bytes:
    """The EIP-712 domain separator of the meter (cached per domain)."""
    sep = _SEPARATORS.get(domain)
    if sep is None:
        sep = keccak(
            EIP712_DOMAIN_TYPEHASH
            + keccak(text=domain.name)
            + keccak(text=domain.version)
            + int(domain.chain_id).to_bytes(32, "big")
            + bytes.fromhex(checksum(domain.verifying_contract)[2:]).rjust(32, b"\0")
        )
        _SEPARATORS[domain] = sep
    return sep


_VOUCHER_FIELDS = tuple(f.name for f in fields(Voucher))


def _word(name: str, value: Any) -> bytes:
    if name in ("node", "payer"):
        return bytes.fromhex(checksum(value)[2:]).rjust(32, b"\0")
    return int(value).to_bytes(32, "big")


def digest(voucher: Voucher, domain: Domain) -> bytes:
    """The EIP-712 digest the contract computes (`UsageMeter.voucher_digest`): `signable(...)`'s
    hash, computed directly from the type hash (a test pins both to the contract)."""
    struct = keccak(VOUCHER_TYPEHASH + b"".join(_word(n, getattr(voucher, n)) for n in _VOUCHER_FIELDS))
    return keccak(b"\x19\x01" + domain_separator(domain) + struct)


def _sign_hash(h: bytes, private_key: Any) -> bytes:
    """65-byte r ‖ s ‖ v (v in {27, 28}, low s) over a 32-byte hash."""
    raw = private_key if isinstance(private_key, bytes) else bytes.fromhex(str(private_key).removeprefix("0x"))
    if _coincurve is not None:  # libsecp256k1 signs RFC 6979, low s (as eth-keys does)
        sig = _signing_key(bytes(raw)).sign_recoverable(h, hasher=None)
        return sig[:64] + bytes([sig[64] + 27])
    from eth_keys import keys

    sig = keys.PrivateKey(bytes(raw)).sign_msg_hash(h)
    return sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v + 27])


@functools.lru_cache(maxsize=4_096)
def _signing_key(raw: bytes) -> Any:
    return _coincurve.PrivateKey(raw)


def _recover_hash(h: bytes, signature: bytes) -> str:
    """The checksummed address that signed the 32-byte hash `h` (65 bytes r ‖ s ‖ v, v in {27, 28})."""
    if _coincurve is not None:
        try:
            pub = _coincurve.PublicKey.from_signature_and_message(
                signature[:64] + bytes([signature[64] - 27]), h, hasher=None
            )
        except Exception as exc:  # noqa: BLE001 - r or s off the curve: no signer
            raise VoucherError(f"the signature does not recover a key: {exc}") from None
        return checksum("0x" + keccak(pub.format(compressed=False)[1:])[-20:].hex())
    return Account._recover_hash(
        h, vrs=(signature[64], int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"))
    )


def sign_voucher(voucher: Voucher, domain: Domain, private_key: bytes | str) -> bytes:
    """A 65-byte r ‖ s ‖ v signature (low s, v in {27, 28}) over the voucher's EIP-712 digest."""
    return _sign_hash(digest(voucher, domain), _key_bytes(private_key))


def _key_bytes(private_key: Any) -> bytes:
    if isinstance(private_key, (bytes, bytearray)):
        return bytes(private_key)
    if hasattr(private_key, "key"):  # an eth-account LocalAccount
        return bytes(private_key.key)
    return bytes.fromhex(str(private_key).removeprefix("0x"))


def recover_signer(voucher: Voucher, domain: Domain, signature: bytes, voucher_digest: bytes | None = None) -> str:
    """The signer of `signature`, refusing what the contract refuses (high s, bad v, wrong length);
    `voucher_digest` is `digest(voucher, domain)` when the caller computed it already."""
    if len(signature) != 65:
        raise VoucherError(f"a voucher signature has 65 bytes (r, s, v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise VoucherError(f"signature v must be 27 or 28, got {v}: re-sign with a standard Ethereum signer")
    if s == 0 or r == 0 or s > HALF_N:
        raise VoucherError("signature s is not in the lower half of the curve order (malleated): re-sign")
    return _recover_hash(voucher_digest or digest(voucher, domain), signature)


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
    signer: str | None = None,
) -> tuple[int, int, int, int]:
    """Check a voucher exactly as `UsageMeter._ingest` does before a node serves on it.

    `holder` is the credential's holder now (the voucher's payer must be it); `previous` is
    the channel's last accepted cumulative counters; `extra_signers` are `sigAuth` delegates
    of the payer (valid now) the caller already resolved; with `settlement_window` the voucher
    must still be payable, and its `issued_at` at most `max_skew_s` ahead of `now`; `signer`,
    when the caller already recovered it (`recover_signer`), saves a second recovery. Returns
    the deltas (mu, calls, failures, latency_ms); raises VoucherError with an actionable
    message otherwise.
    """
    now = int(time.time()) if now is None else now
    if node is not None and checksum(voucher.node) != checksum(node):
        raise VoucherError(f"voucher is for node {voucher.node}, not this node {node}")
    if checksum(voucher.payer) != checksum(holder):
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
    signer = recover_signer(voucher, domain, signature) if signer is None else signer
    allowed = {checksum(voucher.payer), *(checksum(a) for a in extra_signers)}
    if checksum(signer) not in allowed:
        raise VoucherError(f"voucher signed by {signer}, not by the payer {voucher.payer} or its sigAuth delegates")
    return tuple(c - p for c, p in zip(cur, previous))  # type: ignore[return-value]


# ------------------------------------------------------------------ channel acknowledgments
#
# The node signs, on every response and on `GET /channel`, the last voucher it accepted on a
# channel (its counters and EIP-712 digest) and, on a refusal, the digest of the voucher it
# refused with the reason code. The consumer's ledger reconciles with these acks (and with the
# meter's `settled(...)`) after a crash, a lost response or a refusal. An ack is an EIP-191
# signature over `ack_hash(...)`: it is evidence (a node that settles a voucher it signed as
# refused, or acknowledges less than it settled, is caught by its own signature).

ACK_TAG = b"CodexField ChannelAck v1"
ZERO32 = "0x" + "00" * 32


def input_digest(payload: Any) -> str:
    """SHA-256 of a call's input in canonical JSON (the node re-serves a replayed call only on
    the same input)."""
    return "0x" + hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def ack_hash(domain: Domain, ack: dict[str, Any]) -> bytes:
    """The 32-byte message a node signs for `ack` (fields: credential_id, node, payer,
    cumulative_mu/calls/failures/latency_ms, voucher (digest of the accepted voucher), refused
    (digest of a refused one or zero), code)."""
    parts = [
        ACK_TAG,
        int(domain.chain_id).to_bytes(32, "big"),
        bytes.fromhex(domain.verifying_contract[2:]),
        int(ack["credential_id"]).to_bytes(32, "big"),
        bytes.fromhex(checksum(ack["node"])[2:]),
        bytes.fromhex(checksum(ack["payer"])[2:]),
    ]
    parts += [
        int(ack[k]).to_bytes(32, "big")
        for k in ("cumulative_mu", "cumulative_calls", "cumulative_failures", "cumulative_latency_ms")
    ]
    parts += [bytes.fromhex(ack["voucher"][2:]), bytes.fromhex(ack["refused"][2:]), keccak(text=str(ack["code"]))]
    return keccak(b"".join(parts))


def _eip191(h: bytes) -> bytes:
    """The hash an Ethereum `personal_sign` of the 32 bytes `h` signs (EIP-191 version 0x45)."""
    return keccak(b"\x19Ethereum Signed Message:\n32" + h)


def make_ack(
    domain: Domain,
    private_key: Any,
    *,
    credential_id: int,
    node: str,
    payer: str,
    counters: tuple[int, int, int, int],
    voucher: bytes | str | None = None,
    refused: bytes | str | None = None,
    code: str = "",
) -> dict[str, Any]:
    """A node-signed acknowledgment of a channel's last accepted voucher (and of a refusal);
    `private_key` is the node's key, or a callable signing a 32-byte hash (65 bytes r ‖ s ‖ v)."""

    def hx(b: bytes | str | None) -> str:
        return ZERO32 if b is None else (b if isinstance(b, str) else "0x" + b.hex())

    ack = {
        "credential_id": str(int(credential_id)),
        "node": checksum(node),
        "payer": checksum(payer),
        "cumulative_mu": str(counters[0]),
        "cumulative_calls": str(counters[1]),
        "cumulative_failures": str(counters[2]),
        "cumulative_latency_ms": str(counters[3]),
        "voucher": hx(voucher),
        "refused": hx(refused),
        "code": code,
    }
    h = _eip191(ack_hash(domain, ack))
    sig = private_key(h) if callable(private_key) else _sign_hash(h, _key_bytes(private_key))
    ack["signature"] = "0x" + sig.hex()
    return ack


def verify_ack(domain: Domain, ack: Any, *, node: str, credential_id: int, payer: str) -> tuple[int, int, int, int]:
    """The acknowledged counters of a node-signed ack; VoucherError unless `node` signed it for
    this channel."""
    if not isinstance(ack, dict) or "signature" not in ack:
        raise VoucherError("the node's answer carries no signed channel acknowledgment (an old or foreign node)")
    try:
        if (
            int(ack["credential_id"]) != int(credential_id)
            or checksum(ack["payer"]) != checksum(payer)
            or checksum(ack["node"]) != checksum(node)
        ):
            raise VoucherError(
                f"the acknowledgment is for another channel: {ack.get('credential_id')}/"
                f"{ack.get('payer')} at {ack.get('node')}"
            )
        sig = bytes.fromhex(ack["signature"][2:])
        if len(sig) != 65 or sig[64] not in (0, 1, 27, 28):
            raise ValueError("the signature is not 65 bytes r, s, v")
        signer = _recover_hash(_eip191(ack_hash(domain, ack)), sig[:64] + bytes([sig[64] % 27 + 27]))
    except (KeyError, ValueError, TypeError) as exc:
        raise VoucherError(f"malformed channel acknowledgment: {exc}") from None
    if checksum(signer) != checksum(node):
        raise VoucherError(f"the channel acknowledgment is signed by {signer}, not by the node {node}")
    return (
        int(ack["cumulative_mu"]),
        int(ack["cumulative_calls"]),
        int(ack["cumulative_failures"]),
        int(ack["cumulative_latency_ms"]),
    )


def voucher_to_json(v: Voucher) -> dict[str, Any]:
    return {k: (str(x) if isinstance(x, int) else x) for k, x in v.as_message().items()}


def voucher_from_json(d: Any) -> Voucher:
    if not isinstance(d, dict):
        raise TypeError("'voucher' must be an object with the Voucher fields")
    return Voucher(
        credential_id=int(d["credential_id"]),
        node=checksum(d["node"]),
        payer=checksum(d["payer"]),
        purpose=int(d["purpose"]),
        cumulative_mu=int(d["cumulative_mu"]),
        cumulative_calls=int(d["cumulative_calls"]),
        cumulative_failures=int(d["cumulative_failures"]),
        cumulative_latency_ms=int(d["cumulative_latency_ms"]),
        node_price_per_mu=int(d["node_price_per_mu"]),
        issued_at=int(d["issued_at"]),
        deadline=int(d["deadline"]),
    )


@dataclass(frozen=True)
class InFlight:
    """A signed call whose outcome the ledger does not know yet: the voucher, its signature, the
    input (kept to replay the very same call), and the counters the node had acknowledged before."""

    voucher: Voucher
    signature: bytes
    input: Any
    base: tuple[int, int, int, int]


class _KeptLedgerConnection(sqlite3.Connection):
    """A ledger connection kept per thread: `close()` only rolls back a transaction left open."""

    def close(self) -> None:
        if self.in_transaction:
            self.rollback()

    def really_close(self) -> None:
        super().close()


_LEDGER_CONNECTIONS = threading.local()


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
        self.payer = checksum(payer or Account.from_key(private_key).address)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS channels_v2 (chain_id INTEGER, meter TEXT, credential_id TEXT, node TEXT,"
                " payer TEXT, mu TEXT, calls INTEGER, failures INTEGER, latency_ms INTEGER, updated_at INTEGER,"
                " PRIMARY KEY (chain_id, meter, credential_id, node, payer))"
            )
            # Recovery state: the node's last signed ack, and the one call signed but not yet resolved.
            db.execute(
                "CREATE TABLE IF NOT EXISTS recovery_v1 (chain_id INTEGER, meter TEXT, credential_id TEXT, node TEXT,"
                " payer TEXT, ack TEXT, inflight TEXT, PRIMARY KEY (chain_id, meter, credential_id, node, payer))"
            )

    def _connect(self) -> sqlite3.Connection:
        """This thread's kept connection to the ledger file (opening one, with its PRAGMAs, on
        every operation cost a consumer ~0.3 ms each, five times a call). `closing(...)` only
        ends a transaction left open; a file replaced or removed meanwhile is opened afresh."""
        conns = getattr(_LEDGER_CONNECTIONS, "by_path", None)
        if conns is None:
            conns = _LEDGER_CONNECTIONS.by_path = {}
        key = str(self.path)
        try:
            st = os.stat(self.path)
            ident = (st.st_dev, st.st_ino, os.getpid())  # a forked child opens its own
        except FileNotFoundError:
            ident = None
        kept = conns.get(key)
        if kept is not None and ident is not None and kept[1] == ident:
            return kept[0]
        if kept is not None and kept[1][2] == os.getpid():
            kept[0].really_close()
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30, factory=_KeptLedgerConnection)
        wal(db, synchronous="FULL")
        st = os.stat(self.path)
        conns[key] = (db, (st.st_dev, st.st_ino, os.getpid()))
        return db

    def _key_of(self, credential_id: int, node: str) -> tuple:
        return (
            self.domain.chain_id,
            self.domain.verifying_contract.lower(),
            str(credential_id),
            node.lower(),
            self.payer.lower(),
        )

    @staticmethod
    def _signed(db: sqlite3.Connection, key: tuple) -> tuple[int, int, int, int]:
        """The counters this ledger signed last on the channel `key` (zeros before the first)."""
        row = db.execute(
            "SELECT mu, calls, failures, latency_ms FROM channels_v2 WHERE chain_id=? AND meter=? AND"
            " credential_id=? AND node=? AND payer=?",
            key,
        ).fetchone()
        return (int(row[0]), row[1], row[2], row[3]) if row else (0, 0, 0, 0)

    def counters(self, credential_id: int, node: str) -> tuple[int, int, int, int]:
        with closing(self._connect()) as db:
            return self._signed(db, self._key_of(credential_id, node))

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
                prev = self._signed(db, key)
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
            node=checksum(node),
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

    # -- recovery (codexfield.node.client) -----------------------------------------------------

    def _recovery(self, db: sqlite3.Connection, key: tuple) -> tuple[dict | None, dict | None]:
        row = db.execute(
            "SELECT ack, inflight FROM recovery_v1 WHERE chain_id=? AND meter=? AND credential_id=?"
            " AND node=? AND payer=?",
            key,
        ).fetchone()
        return (json.loads(row[0]) if row and row[0] else None, json.loads(row[1]) if row and row[1] else None)

    def _set_recovery(self, db: sqlite3.Connection, key: tuple, ack: dict | None, inflight: dict | None) -> None:
        db.execute(
            "INSERT INTO recovery_v1 VALUES (?,?,?,?,?,?,?) ON CONFLICT (chain_id, meter, credential_id, node,"
            " payer) DO UPDATE SET ack=excluded.ack, inflight=excluded.inflight",
            (*key, json.dumps(ack) if ack else None, json.dumps(inflight) if inflight else None),
        )

    def inflight(self, credential_id: int, node: str) -> InFlight | None:
        """The channel's signed-but-unresolved call, if any."""
        with closing(self._connect()) as db:
            _, f = self._recovery(db, self._key_of(credential_id, node))
        if f is None:
            return None
        return InFlight(
            voucher_from_json(f["voucher"]),
            bytes.fromhex(f["signature"][2:]),
            f["input"],
            tuple(int(x) for x in f["base"]),
        )  # type: ignore[arg-type]

    def last_ack(self, credential_id: int, node: str) -> dict | None:
        """The newest node-signed acknowledgment this ledger holds for the channel."""
        with closing(self._connect()) as db:
            ack, _ = self._recovery(db, self._key_of(credential_id, node))
        return ack

    def begin_call(
        self,
        credential_id: int,
        node: str,
        payload: Any,
        *,
        base: tuple[int, int, int, int],
        mu: int,
        latency_ms: int,
        purpose: int,
        node_price_per_mu: int,
        deadline: int,
        issued_at: int,
    ) -> InFlight:
        """Sign the next voucher for one call and record it as in flight (voucher, signature, the
        input and the acknowledged `base` counters) in the same transaction, before it is sent.

        Refuses while another call of the channel is unresolved, or when `base` is not what this
        ledger signed last: resolve first (`NodeClient.resume`)."""
        kw = dict(
            base=base,
            mu=mu,
            latency_ms=latency_ms,
            purpose=purpose,
            node_price_per_mu=node_price_per_mu,
            deadline=deadline,
            issued_at=int(issued_at),
        )
        with self._lock, closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                out = self._begin_call_tx(db, credential_id, node, payload, **kw)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return out

    def _begin_call_tx(
        self,
        db: sqlite3.Connection,
        credential_id: int,
        node: str,
        payload: Any,
        *,
        base: tuple[int, int, int, int],
        mu: int,
        latency_ms: int,
        purpose: int,
        node_price_per_mu: int,
        deadline: int,
        issued_at: int,
    ) -> InFlight:
        """`begin_call`'s work inside the caller's transaction."""
        key = self._key_of(credential_id, node)
        ack, f = self._recovery(db, key)
        if f is not None:
            raise VoucherError(f"credential {credential_id} has an unresolved call on node {node}: resume it first")
        prev = self._signed(db, key)
        if prev != tuple(base):
            raise VoucherError(f"the ledger signed {prev} on credential {credential_id}, not {tuple(base)}")
        cur = (prev[0] + int(mu), prev[1] + 1, prev[2], prev[3] + int(latency_ms))
        if min(mu, latency_ms) < 0 or max(cur[1:]) > UINT64:
            raise VoucherError("usage deltas must be >= 0 and counters within uint64")
        voucher = Voucher(
            credential_id=int(credential_id),
            node=checksum(node),
            payer=self.payer,
            purpose=int(purpose),
            cumulative_mu=cur[0],
            cumulative_calls=cur[1],
            cumulative_failures=cur[2],
            cumulative_latency_ms=cur[3],
            node_price_per_mu=int(node_price_per_mu),
            issued_at=int(issued_at),
            deadline=int(deadline),
        )
        sig = sign_voucher(voucher, self.domain, self._key)
        db.execute(
            "INSERT INTO channels_v2 VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (chain_id, meter, credential_id,"
            " node, payer) DO UPDATE SET mu=excluded.mu, calls=excluded.calls, failures=excluded.failures,"
            " latency_ms=excluded.latency_ms, updated_at=excluded.updated_at",
            (*key, str(cur[0]), cur[1], cur[2], cur[3], int(time.time())),
        )
        self._set_recovery(
            db,
            key,
            ack,
            {
                "voucher": voucher_to_json(voucher),
                "signature": "0x" + sig.hex(),
                "input": payload,
                "base": [str(c) for c in base],
            },
        )
        return InFlight(voucher, sig, payload, tuple(base))  # type: ignore[arg-type]

    def reissue(self, credential_id: int, node: str, *, issued_at: int, deadline: int) -> InFlight:
        """Re-sign the in-flight voucher with the SAME counters and a fresh `issued_at`/`deadline`
        (and this ledger's current key): never lower, never conflicting (same charge)."""
        with self._lock, closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                key = self._key_of(credential_id, node)
                ack, f = self._recovery(db, key)
                if f is None:
                    raise VoucherError(f"credential {credential_id} has no unresolved call on node {node}")
                old = voucher_from_json(f["voucher"])
                v = Voucher(
                    **{**old.as_message(), "payer": self.payer, "issued_at": int(issued_at), "deadline": int(deadline)}
                )
                sig = sign_voucher(v, self.domain, self._key)
                f.update(voucher=voucher_to_json(v), signature="0x" + sig.hex())
                self._set_recovery(db, key, ack, f)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return InFlight(v, sig, f["input"], tuple(int(x) for x in f["base"]))  # type: ignore[arg-type]

    def record_ack(self, credential_id: int, node: str, ack: dict, *, resolved: bool = False) -> None:
        """Keep the node's newest signed ack (verified by the caller); `resolved` clears the
        in-flight call (the node accepted and served it)."""
        with self._lock, closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._record_ack_tx(db, credential_id, node, ack, resolved=resolved)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _record_ack_tx(
        self, db: sqlite3.Connection, credential_id: int, node: str, ack: dict, *, resolved: bool = False
    ) -> None:
        key = self._key_of(credential_id, node)
        _, f = self._recovery(db, key)
        self._set_recovery(db, key, ack, None if resolved else f)


def commit_group(ops: list[tuple[ConsumerLedger, str, tuple, dict]]) -> list[Any]:
    """Ledger operations of several consumers sharing ONE ledger file, in one transaction (one
    fsync for the group: a load generator or a gateway-of-consumers process).

    Each op is (ledger, "begin_call" | "record_ack", args, kwargs) with `begin_call`'s /
    `record_ack`'s arguments; each runs in its own savepoint, so a refused op (returned as its
    VoucherError) leaves the others; the commit happens before any result is returned, so a
    voucher is durable before it can leave the process (`begin_call`'s rule)."""
    if not ops:
        return []
    paths = {op[0].path.resolve() for op in ops}
    if len(paths) != 1:
        raise ValueError("commit_group: every ledger of a group shares one file")
    first = ops[0][0]
    out: list[Any] = []
    with closing(first._connect()) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            for i, (ledger, what, args, kw) in enumerate(ops):
                db.execute(f"SAVEPOINT op{i}")
                try:
                    if what == "begin_call":
                        out.append(ledger._begin_call_tx(db, *args, **kw))
                    elif what == "record_ack":
                        out.append(ledger._record_ack_tx(db, *args, **kw))
                    else:
                        raise ValueError(f"commit_group: unknown operation {what!r}")
                    db.execute(f"RELEASE op{i}")
                except VoucherError as exc:
                    db.execute(f"ROLLBACK TO op{i}")
                    db.execute(f"RELEASE op{i}")
                    out.append(exc)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return out


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
        if not 1 <= max_batch <= METER_MAX_BATCH:
            raise ValueError(f"max_batch must be between 1 and {METER_MAX_BATCH} (the meter's batch limit)")
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
