"""The reference node gateway: serves invocations of one capsule for metered vouchers.

Protocol (JSON over HTTP):

    GET  /health                         -> {status, node, capsule, runtime, meter, chain_id, price_per_mu, ...}
    GET  /quote?credential=N&input_len=L -> {mu, node_price_per_mu, license_price_per_mu, purpose,
                                             previous: {cumulative_*}, next: {cumulative_*}, ack,
                                             chain_time, min_deadline, domain}   (text capsules)
    POST /quote {credential_id, input}   -> the same, for any runtime's input
    GET  /channel?credential=N&payer=P   -> {ack, settled, status}: the channel-recovery call
    POST /invoke {credential_id, input, voucher, signature}
                                         -> 200 {result, mu, latency_ms, cumulative, ack, chain_time}
                                          | 4xx {error: <code>, message: <what to do>, ack?}

A voucher is served on only if it is *exactly* the channel's next one: previous cumulative
counters + this call's MU, one more call, no new failure, a non-negative latency delta (the
consumer's measurement of its previous call), this node, this node's price or more, a
deadline at least `min_deadline_s` ahead, signed by the credential's holder or a live
`sigAuth` delegate of the holder (IdentityRegistry), with the UsageMeter's EIP-712 rules
(`codexfield.sdk.metering.verify_voucher`), on a credential that `LicenseManager.authorize`
accepts for the voucher's purpose and this capsule, with enough escrow to pay it.

Recovery: every answer about a channel carries `ack`, the node-signed acknowledgment of the
last voucher it accepted there (`codexfield.sdk.metering.make_ack`); a refusal's ack also names
the refused voucher's digest and the code. Re-sending the last accepted voucher with the same
input re-serves the call (the answer was lost), never charging twice; a new channel starts at
the meter's `settled(...)` (a node that lost its file never asks for what was paid).

Throughput: the HTTP server runs `invoke_async` on the event loop (no thread hand-off per
call): calls of one channel are ordered by the channel's asyncio lock, other channels
interleave, and no lock is held across a chain read; only cache misses and the group commit
(one transaction for every call that arrived while the previous one ran: one hand-off per
group) leave the loop. The escrow is read from a cache that the escrow watcher keeps fresh
from the meter's events (deposits, withdrawals, other nodes' settlements; this node's own
ingests lower it by what the meter took), reserved per payer between the check and the commit, and read again
before any refusal; the meter checks it again at batch time. Cached credentials are dropped
by the same watcher on the LicenseManager's `Transfer` and `CredentialRevoked` (and delegates
on `DIDDelegateChanged`), carry their revocation or expiry time, and are re-read in the
background; a background thread ingests batches through `UsageMeter.ingest` (a batch whose
transaction fails as a whole refused nothing: it goes again).

Error codes: 400 `bad_request` / `bad_input` / `missing_voucher` / `deadline` / `issued_at`;
401 `bad_signature`; 402 `underpaid` / `escrow_short`; 403 `credential_refused`; 409 `replayed` /
`stale`; 413 `input_too_long`; 422 `wrong_counters`; 503 `busy`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import namedtuple
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from codexfield import scopes
from codexfield.constants import METER_MAX_BATCH
from codexfield.did import SIG_AUTH
from codexfield.keepers.base import TxSender, is_transient, log_event, retry
from codexfield.node.runtimes import InputError, Runtime, as_runtime
from codexfield.node.store import NodeStore
from codexfield.node.store import _key as _channel_key
from codexfield.reasons import REASONS
from codexfield.sdk.metering import (
    Domain,
    Voucher,
    VoucherBatcher,
    VoucherError,
    digest,
    input_digest,
    make_ack,
    recover_signer,
    verify_voucher,
    voucher_from_json,
    voucher_to_json,
)
from codexfield.sdk.metering import checksum as to_checksum_address

DEFAULT_PURPOSE = scopes.mask_of(["inference"])
MAX_LATENCY_DELTA_MS = 600_000
MAX_BODY_BYTES = 64 * 1024  # larger POST bodies answer 413
ZERO4 = (0, 0, 0, 0)


_REFUSALS = frozenset(f"meter: {r.message}" for r in REASONS if r.code)


def _voucher_refusal(note: str) -> bool:
    """Whether a lone voucher's revert is the meter refusing that voucher (a reason of its own,
    `codexfield.reasons`), not the transaction failing (out of gas, no funds for gas)."""
    return any(r in note for r in _REFUSALS)


class _Deferred(Exception):
    """An ingest the RPC interrupted (past the sender's retries): its batch is kept, not marked refused."""


class InvokeError(Exception):
    def __init__(self, status: int, code: str, message: str, ack: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.ack = status, code, message, ack

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.ack is not None:
            out["ack"] = self.ack
        return out


@dataclass
class CredentialInfo:
    ok: bool
    holder: str
    capsule_id: int
    price_per_mu: int
    token: str
    reason: str
    checked_at: float
    until: int = 0  # when the credential stops authorising (revocation's effect or expiry; 0: never)


def counters_json(c: tuple[int, int, int, int]) -> dict[str, str]:
    return {
        "cumulative_mu": str(c[0]),
        "cumulative_calls": str(c[1]),
        "cumulative_failures": str(c[2]),
        "cumulative_latency_ms": str(c[3]),
    }


class _Channel:
    """In-memory mirror of one channel's row (the store is the durable copy)."""

    __slots__ = (
        "lock",
        "alock",
        "accepted",
        "settled",
        "voucher",
        "signature",
        "digest",
        "input_sha",
        "unit_price",
        "ack",
    )

    def __init__(self, accepted, settled, voucher=None, signature=b"", input_sha=""):
        self.lock = threading.Lock()  # `Gateway.invoke` (threads)
        self.alock: asyncio.Lock | None = None  # `Gateway.invoke_async` (the event loop), made there
        self.accepted = tuple(accepted)
        self.settled = tuple(settled)
        self.voucher: Voucher | None = voucher
        self.signature = signature
        self.digest: bytes | None = None
        self.input_sha = input_sha
        self.unit_price = 0  # licence + node price per MU of the last accepted voucher
        self.ack: dict | None = None  # the signed ack of `accepted` (signed once per accepted voucher)


class _Waiter:
    __slots__ = ("done", "event", "item", "lead", "result")

    def __init__(self, item: tuple):
        self.item, self.event, self.result, self.done, self.lead = item, threading.Event(), None, False, False


class _GroupCommit:
    """Commit accepted vouchers in groups: callers block until their group's transaction is done.

    Leader/follower: the caller that finds no commit running commits everything queued so far in
    one transaction (its own item included), wakes that group, and hands the lead to the first
    caller that queued meanwhile (no commit thread: one thread switch less per call)."""

    def __init__(self, store: NodeStore):
        self.store = store
        self._lock = threading.Lock()
        self._queued: list[_Waiter] = []
        self._busy = False
        self.groups = 0

    def accept(self, item: tuple) -> bool:
        me = _Waiter(item)
        with self._lock:
            self._queued.append(me)
            if not self._busy:
                self._busy = me.lead = True
        while not me.done:
            if me.lead:
                self._lead(me)
            else:
                me.event.wait()
                me.event.clear()
        if isinstance(me.result, BaseException):
            raise me.result
        return bool(me.result)

    def _lead(self, me: _Waiter) -> None:
        with self._lock:
            batch, self._queued = self._queued, []
        try:
            results: list = self.store.accept_many([w.item for w in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter of the group
            results = [exc] * len(batch)
        self.groups += 1
        for w, r in zip(batch, results):
            w.result, w.done = r, True
        me.lead = False
        with self._lock:
            nxt = self._queued[0] if self._queued else None
            if nxt is not None:
                nxt.lead = True
            else:
                self._busy = False
        for w in batch:
            if w is not me:
                w.event.set()
        if nxt is not None:
            nxt.event.set()


class _AsyncGroupCommit:
    """`_GroupCommit` for the event loop: calls queue their item and await a future; one task
    commits everything queued so far in one transaction in a worker thread (one thread hand-off
    per group, not per call), resolves the group's futures, and commits the next group."""

    def __init__(self, store: NodeStore):
        self.store = store
        self._queued: list[tuple[tuple, Any, asyncio.Future]] = []
        self._running = False
        self.groups = 0

    async def accept(self, item: tuple, on_commit: Any) -> bool:
        """True once `item` is committed. `on_commit(committed)` runs first, in the commit task,
        for every item (committed or not), so a caller cancelled while it waits (a client that
        hung up) cannot leave the channel's memory behind its row nor an escrow reservation held."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queued.append((item, on_commit, fut))
        if not self._running:
            self._running = True
            loop.create_task(self._run(loop))
        return bool(await fut)

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    results: list = await loop.run_in_executor(None, self.store.accept_many, [i for i, _, _ in batch])
                except BaseException as exc:  # noqa: BLE001 - handed to every waiter of the group
                    results = [exc] * len(batch)
                self.groups += 1
                for (_, on_commit, fut), r in zip(batch, results):
                    on_commit(r is True)
                    if fut.done():
                        continue
                    if isinstance(r, BaseException):
                        fut.set_exception(r)
                    else:
                        fut.set_result(r)
        finally:
            self._running = False


def _as_ape(t: Any) -> Any:
    """A converter from eth-abi's decoding of ABI type `t` to ape's: addresses checksummed
    (eth-abi decodes them lower-case; every cache key here is checksummed), inside tuples and
    arrays too, and a struct as a named tuple with the ABI's field names."""
    kind = str(t.type)
    if kind.endswith("]"):  # an array: convert each element as the element type
        element = _as_ape(t.model_copy(update={"type": kind[: kind.rindex("[")]}))
        return lambda xs: tuple(element(x) for x in xs)
    if kind == "address":
        return to_checksum_address
    if kind == "tuple":
        fields = [_as_ape(c) for c in t.components]
        struct = namedtuple("struct", [c.name or f"field_{i}" for i, c in enumerate(t.components)])
        return lambda xs: struct(*(f(x) for f, x in zip(fields, xs)))
    return lambda x: x


class _Reads:
    """The hot chain reads (escrow, pending withdrawal, head time) as raw JSON-RPC over one
    keep-alive session per thread: an ape contract call costs ~10 ms of Python (validation,
    code checks, pydantic), this ~1 ms. Falls back to ape when the provider has no HTTP URI."""

    def __init__(self, contract: Any):
        from ape import chain

        self.contract = contract
        self.address = str(contract.address)
        uri = getattr(chain.provider, "http_uri", None) or getattr(chain.provider, "uri", None)
        self.uri = uri if isinstance(uri, str) and uri.startswith("http") else None
        self._local = threading.local()
        self._abis: dict[str, tuple[bytes, list[str], list[str], Any]] = {}

    def rpc(self, method: str, params: list) -> Any:
        import requests

        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = requests.Session()
        r = http.post(self.uri, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10)
        out = r.json()
        if "error" in out:
            raise RuntimeError(f"{method}: {out['error']}")
        return out["result"]

    def call(self, name: str, *args: Any) -> Any:
        if self.uri is None:
            return getattr(self.contract, name)(*args)
        from eth_abi import decode, encode

        abi = self._abis.get(name)
        if abi is None:
            m = getattr(self.contract, name).abis[0]
            abi = (
                keccak(text=m.selector)[:4],
                [i.canonical_type for i in m.inputs],
                [o.canonical_type for o in m.outputs],
                [_as_ape(o) for o in m.outputs],
            )
            self._abis[name] = abi
        data = abi[0] + encode(abi[1], list(args))
        raw = self.rpc("eth_call", [{"to": self.address, "data": "0x" + data.hex()}, "latest"])
        out = tuple(f(x) for f, x in zip(abi[3], decode(abi[2], bytes.fromhex(raw[2:]))))
        return out[0] if len(out) == 1 else out

    def head_time(self) -> int:
        if self.uri is None:
            from ape import chain

            return int(chain.blocks.head.timestamp)
        return int(self.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


class Gateway:
    """Framework-free core of the node (the HTTP layer below only translates)."""

    who = "node"

    def __init__(
        self,
        *,
        capsule_id: int,
        model: Any,
        account: Any,
        contracts: dict[str, Any],
        store: NodeStore,
        price_per_mu: int = 1_000,
        batch_size: int = METER_MAX_BATCH,
        max_age_s: float = 5.0,
        min_deadline_s: int = 600,
        credential_ttl_s: float = 30.0,
        hooks: dict | None = None,
        max_skew_s: int = 60,
        escrow_ttl_s: float = 10.0,
        chain_time_ttl_s: float = 1.0,
        check_meter: bool = True,
        inline_model_s: float = 0.002,
        watch_interval_s: float = 0.25,
        escrow_watch_ttl_s: float = 300.0,
    ):
        self.capsule_id = int(capsule_id)
        self.runtime: Runtime = as_runtime(model)
        self.model = model
        self.account = account
        self.address = to_checksum_address(account.address)
        self._ack_key = getattr(account, "private_key", None) or _hash_signer(account)
        self.lm = contracts["LicenseManager"]
        self.meter = contracts["UsageMeter"]
        self.staking = contracts.get("AccessStaking")
        self.identity = contracts.get("IdentityRegistry")
        self.store = store
        self.price_per_mu = int(price_per_mu)
        self.batch_size = batch_size
        self.min_deadline_s = min_deadline_s
        self.credential_ttl_s = credential_ttl_s
        self.escrow_ttl_s = escrow_ttl_s
        self.chain_time_ttl_s = chain_time_ttl_s
        self.check_meter = check_meter
        # `invoke_async` runs the model on the event loop while its calls average at most this
        # (a trivial or small model); a slower one runs in a worker thread.
        self.inline_model_s = inline_model_s
        self._model_ewma = 0.0
        self.watch_interval_s = watch_interval_s
        self.escrow_watch_ttl_s = escrow_watch_ttl_s
        self.domain = Domain.of(self.meter)
        self._reads = _Reads(self.meter)
        self._lm_reads = _Reads(self.lm)  # the credential reads, raw JSON-RPC like the escrow's
        self.chain_id = self.domain.chain_id
        self.settlement_window = int(self.meter.settlement_window())
        self.max_skew_s = int(max_skew_s)
        self.sender = TxSender(account, store, self.who, hooks=hooks)
        self._chain = threading.RLock()
        self._channels: dict[str, _Channel] = {}
        self._channels_lock = threading.Lock()
        self._creds: dict[tuple[int, int], CredentialInfo] = {}
        self._creds_gen = 0  # bumped when the watcher drops credentials: a read begun before is not kept
        self._refreshing: set[tuple[int, int]] = set()
        self._refresh_queue: queue.Queue[tuple[int, int]] = queue.Queue()
        self._refresher: threading.Thread | None = None
        self._delegates: dict[tuple[str, str], tuple[bool, float]] = {}
        self._escrow: dict[tuple[str, str], tuple[int, float]] = {}
        self._time: tuple[int, float] = (0, -1e9)
        self._queue: queue.Queue[list[tuple[Voucher, bytes]]] = queue.Queue()
        self._deferred: list[tuple[Voucher, bytes]] | None = None  # a batch an RPC outage held back
        self.batcher = VoucherBatcher(self._enqueue, max_batch=METER_MAX_BATCH, max_age_s=max_age_s)
        self._commit = _GroupCommit(store)
        self._acommit = _AsyncGroupCommit(store)
        self._reserved: dict[str, int] = {}  # payer -> escrow reserved by calls being committed
        self._owed_lock = threading.Lock()  # `_reserve`: check and reserve at once (no I/O inside)
        # The escrow watcher (`start_watcher`): the meter's escrow events drop the cache entries
        # they touch; while it runs, an entry lives until an event (or `escrow_watch_ttl_s`).
        self._watching = False
        self._watch_block: int | None = None
        self._escrow_gen = 0
        self._watcher: threading.Thread | None = None
        self.watch_polls = 0
        self.watch_dropped = 0
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._ingest_lock = threading.Lock()
        self.served = 0
        self.rejected = 0
        self.replayed = 0
        self.ingested_batches = 0
        self.ingest_retries = 0  # batches whose transaction failed (not a voucher): sent again later
        self.model_s = 0.0  # time in the runtime (the model's own time)
        self.invoke_s = 0.0  # time in `invoke` (checks + commit + model): overhead = invoke_s - model_s
        self.ingest_cpu_s = 0.0  # CPU time of the ingest thread (building, sending, reading back batches)
        # Resume: settle what an earlier run signed, re-queue what it accepted but did not settle.
        with self._chain:
            self.sender.reconcile()
        for v, sig in store.pending():
            self.batcher.add(v, sig)

    # -- chain helpers ---------------------------------------------------------------------

    def chain_time(self, fresh: bool = False) -> int:
        """The head block's timestamp, cached for `chain_time_ttl_s`."""
        t, at = self._time
        if fresh or time.monotonic() - at >= self.chain_time_ttl_s:
            t = int(retry(self._reads.head_time, who=self.who, what="head"))
            self._time = (t, time.monotonic())
        return t

    def credential(self, credential_id: int, purpose: int, now: int) -> CredentialInfo:
        """Chain-verified credential check, cached for `credential_ttl_s`; an accepted credential
        older than that but younger than twice it is served from the cache while a background
        thread reads it again (the chain reads never stall calls; the meter judges authority again
        at batch time)."""
        hit = self._credential_cached(credential_id, purpose)
        return hit if hit is not None else self._read_credential(credential_id, purpose, now)

    def _credential_cached(self, credential_id: int, purpose: int) -> CredentialInfo | None:
        """`credential`'s cache alone (None: read the chain)."""
        key = (int(credential_id), int(purpose))
        hit = self._creds.get(key)
        if hit is not None:
            age = time.monotonic() - hit.checked_at
            if age < self.credential_ttl_s:
                return hit
            if hit.ok and age < 2 * self.credential_ttl_s:
                self._refresh_later(key)
                return hit
        return None

    def _refresh_later(self, key: tuple[int, int]) -> None:
        """Read the credential `key` again in the one refresher thread. Credentials accepted
        together age together: one thread per refresh used to start dozens at once, each
        holding the GIL for ~40 ms of ape calls, and stalled the event loop for a second."""
        with self._channels_lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
            self._refresh_queue.put(key)
            if self._refresher is None:
                self._refresher = threading.Thread(target=self._refresh_loop, name="credential-refresh", daemon=True)
                self._refresher.start()

    def _refresh_loop(self) -> None:
        """The refresher thread: one queued credential at a time, until the gateway stops."""
        try:
            while not self._stop.is_set():
                try:
                    key = self._refresh_queue.get(timeout=1.0)
                except queue.Empty:
                    continue
                try:
                    self._read_credential(key[0], key[1], self.chain_time())
                except Exception as exc:  # noqa: BLE001 - the next call past 2 x TTL reads inline
                    log_event(self.who, "credential_refresh_failed", logging.WARNING, error=str(exc)[:200])
                finally:
                    with self._channels_lock:
                        self._refreshing.discard(key)
        finally:
            with self._channels_lock:
                self._refresher = None  # a refresh asked for later starts a new one

    def _read_credential(self, credential_id: int, purpose: int, now: int) -> CredentialInfo:
        key = (int(credential_id), int(purpose))
        lm = self._lm_reads
        gen = self._creds_gen
        try:  # reads run without a lock (only transactions are serialised)
            cred = lm.call("credential", credential_id)
            holder = str(lm.call("ownerOf", credential_id))
        except Exception:
            info = CredentialInfo(False, "", 0, 0, "", f"credential {credential_id} does not exist", time.monotonic())
            if gen == self._creds_gen:
                self._creds[key] = info
            return info
        terms = lm.call("terms", cred.terms_id)
        ok = bool(lm.call("authorize", credential_id, holder, purpose, now))
        reason = ""
        meter = bytes(terms.meter)
        if int(terms.capsule_id) != self.capsule_id:
            ok, reason = (
                False,
                f"credential {credential_id} licenses capsule {terms.capsule_id}, this node serves {self.capsule_id}",
            )
        elif self.check_meter and meter != self.runtime.meter_id:
            ok, reason = (
                False,
                (
                    f"credential {credential_id}'s terms meter {meter.hex()} is not this node's meter "
                    f"'{self.runtime.meter}' ({self.runtime.meter_id.hex()}): MU would not mean the same"
                ),
            )
        elif not ok:
            reason = (
                f"credential {credential_id} does not authorize purpose {scopes.names_of(purpose)} now "
                "(expired, revoked, or outside the licence scope)"
            )
        info = CredentialInfo(
            ok,
            to_checksum_address(holder),
            int(terms.capsule_id),
            int(terms.price_per_mu),
            str(terms.payment_token),
            reason,
            time.monotonic(),
            min((int(t) for t in (cred.revoked_at, cred.expires_at) if int(t)), default=0),
        )
        if gen == self._creds_gen:  # no Transfer or revocation dropped credentials meanwhile
            self._creds[key] = info
        return info

    def _delegate_ok(self, holder: str, signer: str, issued_at: int) -> bool:
        """Whether `signer` is a sigAuth delegate of `holder` valid after `issued_at` (the meter's rule)."""
        if self.identity is None:
            return False
        key = (holder, signer)
        hit = self._delegates.get(key)
        if hit is None or time.monotonic() - hit[1] >= self.credential_ttl_s or hit[0] <= issued_at:
            until = int(self.identity.delegates(holder, keccak(SIG_AUTH), signer))
            hit = (until, time.monotonic())
            self._delegates[key] = hit
        return hit[0] > issued_at

    def _available(self, holder: str, token: str, fresh: bool) -> int:
        """The holder's escrow minus a pending withdrawal, from a cache: read on a miss and
        before a refusal, lowered by what each of this node's ingests settled, and dropped by
        the escrow watcher when the meter logs a deposit, a withdrawal (request) or another
        node's settlement for the holder (without the watcher: read when older than
        `escrow_ttl_s`). The meter checks the escrow again at batch time."""
        key = (holder, token)
        hit = self._escrow_cached(holder, token)
        if fresh or hit is None:
            gen = self._escrow_gen
            escrow = int(self._reads.call("escrow", holder, token))
            # Escrow is shared by every node the payer uses and a pending withdrawal leaves after
            # the thaw: count only what stays (docs/THREAT_MODEL.md "one escrow, several nodes").
            pending = int(self._reads.call("withdrawals", holder, token)[0])  # (amount, unlock time)
            hit = escrow - min(escrow, pending)
            if gen == self._escrow_gen:  # no event dropped entries meanwhile: the read is current
                self._escrow[key] = (hit, time.monotonic())
        return hit

    def _escrow_cached(self, holder: str, token: str) -> int | None:
        """`_available`'s cache alone (None: read the chain)."""
        hit = self._escrow.get((holder, token))
        if hit is None:
            return None
        ttl = self.escrow_watch_ttl_s if self._watching else self.escrow_ttl_s
        return hit[0] if time.monotonic() - hit[1] < ttl else None

    # -- the chain watcher --------------------------------------------------------------------

    # What each watched contract's events invalidate: the meter's escrow events an escrow
    # entry, the LicenseManager's a credential (moved or revoked), the IdentityRegistry's a
    # delegate of the identity.
    _WATCHED = (
        ("meter", ("Deposited", "WithdrawalRequested", "Withdrawn", "UsageRecorded")),
        ("lm", ("Transfer", "CredentialRevoked")),
        ("identity", ("DIDDelegateChanged",)),
    )

    def _watch_topics(self) -> dict[str, str]:
        """topic0 -> event name, for the events `watch_once` polls."""
        out = {}
        for attr, names in self._WATCHED:
            contract = getattr(self, attr)
            for name in names if contract is not None else ():
                out["0x" + keccak(text=getattr(contract, name).abi.selector).hex()] = name
        return out

    def watch_once(self) -> int:
        """One poll of the events that make a cached read stale, since the last poll (and of
        the head's time, for `chain_time`): the meter's escrow events, credential transfers and
        revocations, delegate changes. Returns how many cache entries it dropped."""
        topics = getattr(self, "_topics", None)
        if topics is None:
            topics = self._topics = self._watch_topics()
            self._watch_addresses = [str(c.address) for c in (self.meter, self.lm, self.identity) if c is not None]
        head = self._reads.rpc("eth_getBlockByNumber", ["latest", False])
        number, ts = int(head["number"], 16), int(head["timestamp"], 16)
        self._time = (ts, time.monotonic())
        if self._watch_block is None:  # entries read before the watch began may predate an event
            self._watch_block = number
            self._escrow_gen += 1
            self._creds_gen += 1
            self._escrow.clear()
            self._creds.clear()
            self._delegates.clear()
            self._watching = True
            return 0
        if number <= self._watch_block:
            return 0
        logs = self._reads.rpc(
            "eth_getLogs",
            [
                {
                    "address": self._watch_addresses,
                    "fromBlock": hex(self._watch_block + 1),
                    "toBlock": hex(number),
                    "topics": [list(topics)],
                }
            ],
        )
        meter, lm = str(self.meter.address).lower(), str(self.lm.address).lower()
        me = self.address.lower()[2:]
        touched: set[tuple[str, str | None]] = set()
        credentials: set[int] = set()
        identities: set[str] = set()
        for log in logs:
            name, at = topics.get(log["topics"][0]), str(log["address"]).lower()
            if at == lm:
                if name == "Transfer":
                    credentials.add(int(log["topics"][3], 16))
                elif name == "CredentialRevoked":
                    credentials.add(int(log["topics"][1], 16))
            elif at != meter:
                if name == "DIDDelegateChanged":
                    identities.add(to_checksum_address("0x" + log["topics"][1][-40:]))
            elif name == "UsageRecorded":
                if log["topics"][3][-40:].lower() == me:
                    continue  # this node's own settlement: `_ingest` lowered the cache by what it paid
                touched.add(("0x" + log["data"][2:66][-40:].lower(), None))  # payer: any token
            elif name is not None:
                touched.add(("0x" + log["topics"][1][-40:].lower(), "0x" + log["topics"][2][-40:].lower()))
        dropped = 0
        if touched:
            self._escrow_gen += 1
            for key in list(self._escrow):
                h, t = key[0].lower(), str(key[1]).lower()
                if (h, t) in touched or (h, None) in touched:
                    self._escrow.pop(key, None)
                    dropped += 1
        if credentials:
            self._creds_gen += 1
            for key in list(self._creds):
                if key[0] in credentials:
                    self._creds.pop(key, None)
                    dropped += 1
        if identities:
            for key in list(self._delegates):
                if key[0] in identities:
                    self._delegates.pop(key, None)
                    dropped += 1
        self._watch_block = number
        self.watch_polls += 1
        self.watch_dropped += dropped
        return dropped

    def start_watcher(self) -> bool:
        """Poll the watched events (`watch_once`) every `watch_interval_s` in a thread (False:
        the provider has no HTTP endpoint; the caches keep their timed TTLs)."""
        if self._reads.uri is None or self._watcher is not None:
            return False

        def loop() -> None:
            while not self._stop.wait(self.watch_interval_s):
                try:
                    self.watch_once()
                except Exception as exc:  # noqa: BLE001 - back to the timed cache until a poll works
                    self._watching, self._watch_block = False, None
                    log_event(self.who, "escrow_watch_failed", logging.WARNING, error=str(exc)[:200])
            self._watching = False

        try:
            self.watch_once()
        except Exception as exc:  # noqa: BLE001 - the thread retries; the timed cache meanwhile
            log_event(self.who, "escrow_watch_failed", logging.WARNING, error=str(exc)[:200])
        self._watcher = threading.Thread(target=loop, name="escrow-watcher", daemon=True)
        self._watcher.start()
        return True

    def _owed(self, payer: str) -> int:
        """What this node has accepted from `payer` and not settled yet, over all its channels,
        plus what calls being committed reserved."""
        tail = ":" + payer.lower()
        return self._reserved.get(payer.lower(), 0) + sum(
            (c.accepted[0] - c.settled[0]) * c.unit_price for k, c in list(self._channels.items()) if k.endswith(tail)
        )

    def _reserve(self, payer: str, amount: int, have: int) -> int | None:
        """Reserve `amount` of the payer's escrow for a call about to be committed, iff `have`
        covers it on top of everything this node accepted or reserved from the payer (None);
        else the total that would be owed. Two channels of one payer checked at once cannot
        both count the same escrow."""
        with self._owed_lock:
            owed = self._owed(payer) + amount
            if have < owed:
                return owed
            p = payer.lower()
            self._reserved[p] = self._reserved.get(p, 0) + amount
        return None

    def _unreserve(self, payer: str, amount: int) -> None:
        with self._owed_lock:
            p = payer.lower()
            left = self._reserved.get(p, 0) - amount
            if left > 0:
                self._reserved[p] = left
            else:
                self._reserved.pop(p, None)

    def _channel(self, credential_id: int, payer: str) -> _Channel:
        """The channel's in-memory state: from the store, or for a new channel from the meter's
        `settled(...)` (a node that lost its file starts where the chain is)."""
        key = _channel_key(credential_id, payer)
        ch = self._channels.get(key)
        if ch is not None:
            return ch
        row = self.store.last(credential_id, payer)
        if row is not None:
            ch = _Channel(row[0], row[1], row[2], row[3], row[4])
        else:
            settled = tuple(int(x) for x in self.meter.settled(credential_id, self.address, payer))[:4]
            ch = _Channel(settled, settled)
        with self._channels_lock:
            return self._channels.setdefault(key, ch)

    def ack(self, credential_id: int, payer: str, *, refused: Voucher | None = None, code: str = "") -> dict:
        """The node-signed acknowledgment of the channel's last accepted voucher."""
        ch = self._channel(credential_id, payer)
        if refused is None and ch.ack is not None and ch.ack["cumulative_calls"] == str(ch.accepted[1]):
            return ch.ack
        if ch.voucher is not None and ch.digest is None:
            ch.digest = digest(ch.voucher, self.domain)
        ack = make_ack(
            self.domain,
            self._ack_key,
            credential_id=credential_id,
            node=self.address,
            payer=payer,
            counters=ch.accepted,
            voucher=ch.digest,
            refused=digest(refused, self.domain) if refused else None,
            code=code,
        )
        if refused is None:
            ch.ack = ack
        return ack

    # -- registration ----------------------------------------------------------------------
    def ensure_registered(self, endpoint: str, stake: int, *, services: int = 1, region: str = "local") -> str:
        """Register in AccessStaking with `stake` when not registered; update the endpoint if it moved."""
        from codexfield.poa import region_bytes

        if self.staking is None:
            return "no staking"
        with self._chain:
            status = int(self.staking.node(self.address).status)
            if status == 0:
                token = _erc20(self.staking.stake_token())
                have = int(token.balanceOf(self.address))
                if have < stake:
                    raise RuntimeError(
                        f"the node {self.address} holds {have} stake tokens, needs {stake}: "
                        "fund it with the stake token (CDX) before registering"
                    )
                if int(token.allowance(self.address, self.staking.address)) < stake:
                    token.approve(self.staking.address, stake, sender=self.account)
                self.staking.register_node(
                    endpoint, services, region_bytes(region), "0x" + "00" * 20, stake, sender=self.account
                )
                log_event(self.who, "registered", node=self.address, endpoint=endpoint, stake=stake)
                return "registered"
            if status == 3:
                raise RuntimeError(f"node {self.address} was ejected from AccessStaking; use a new node key")
            if str(self.staking.endpoint(self.address)) != endpoint:
                self.staking.update_node(
                    endpoint, services, region_bytes(region), "0x" + "00" * 20, self.price_per_mu, sender=self.account
                )
                log_event(self.who, "endpoint_updated", node=self.address, endpoint=endpoint)
                return "updated"
        return "already registered"

    # -- protocol --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "node": self.address,
            "capsule": self.capsule_id,
            "chain_id": self.chain_id,
            "meter": self.domain.verifying_contract,
            "meter_name": self.runtime.meter,
            "runtime": self.runtime.kind,
            "price_per_mu": str(self.price_per_mu),
            "served": self.served,
            "pending_channels": len(self.batcher),
        }

    def quote(
        self, credential_id: int, input_len: int | None = None, purpose: int = DEFAULT_PURPOSE, *, payload: Any = None
    ) -> dict[str, Any]:
        """The terms of the next call: `payload` (any runtime) or `input_len` (text runtimes)."""
        if payload is None:
            from codexfield.node.model import MAX_INPUT_CHARS

            if self.runtime.kind != "naive-bayes":
                raise InvokeError(
                    400,
                    "bad_request",
                    f"this node runs a {self.runtime.kind} capsule: POST /quote "
                    "{credential_id, input} with the call's input",
                )
            if input_len is None or input_len < 0 or input_len > MAX_INPUT_CHARS:
                raise InvokeError(413, "input_too_long", f"inputs are 0..{MAX_INPUT_CHARS} characters")
            payload = "x" * input_len
        mu = self._mu(payload)
        now = self.chain_time()
        info = self.credential(credential_id, purpose, now)
        prev = self._channel(credential_id, info.holder).accepted if info.holder else ZERO4
        return {
            "node": self.address,
            "capsule": self.capsule_id,
            "credential_id": str(credential_id),
            "credential_ok": info.ok,
            "credential_note": info.reason,
            "runtime": self.runtime.kind,
            "mu": mu,
            "meter_name": self.runtime.meter,
            "node_price_per_mu": str(self.price_per_mu),
            "license_price_per_mu": str(info.price_per_mu),
            "payment_token": info.token,
            "cost": str(mu * (self.price_per_mu + info.price_per_mu)),
            "purpose": str(purpose),
            "previous": counters_json(prev),
            "next": counters_json((prev[0] + mu, prev[1] + 1, prev[2], prev[3])),
            "ack": self.ack(credential_id, info.holder) if info.holder else None,
            "chain_time": now,
            "min_deadline": now + self.min_deadline_s,
            "payer": info.holder,
            "settlement_window": self.settlement_window,
            "domain": {
                "chain_id": self.chain_id,
                "verifying_contract": self.domain.verifying_contract,
                "name": self.domain.name,
                "version": self.domain.version,
            },
        }

    def channel_state(self, credential_id: int, payer: str) -> dict[str, Any]:
        """`GET /channel`: the signed ack of the last accepted voucher, and what the meter settled."""
        payer = to_checksum_address(payer)
        ch = self._channel(credential_id, payer)
        return {
            "node": self.address,
            "credential_id": str(credential_id),
            "payer": payer,
            "accepted": counters_json(ch.accepted),
            "settled": counters_json(ch.settled),
            "ack": self.ack(credential_id, payer),
            "chain_time": self.chain_time(),
            "min_deadline": self.chain_time() + self.min_deadline_s,
            "settlement_window": self.settlement_window,
        }

    def _mu(self, payload: Any) -> int:
        try:
            return self.runtime.mu(payload)
        except InputError as exc:
            status, code = (413, "input_too_long") if "at most" in str(exc) else (400, "bad_input")
            raise InvokeError(status, code, str(exc)) from None

    def invoke(self, body: Any) -> dict[str, Any]:
        """Check, commit, serve (blocking: a thread per call). Raises InvokeError (never serves)
        on any refusal. The HTTP server uses `invoke_async`; both run the same checks in the
        same order (`_parse`, `_check_credential`, `_check_voucher`, `_check_counters`, the
        escrow, the group commit)."""
        t0 = time.perf_counter()
        try:
            return self._invoke(body)
        except InvokeError as e:
            self._refused(e)
            raise
        finally:
            self.invoke_s += time.perf_counter() - t0

    async def invoke_async(self, body: Any) -> dict[str, Any]:
        """`invoke` on the event loop: no thread hand-off on the hot path. Only a cache miss
        (chain time, credential, channel row, delegate, escrow) and the group commit (one
        hand-off per group of calls, not per call) leave the loop; calls of one channel are
        ordered by the channel's asyncio lock, other channels interleave."""
        t0 = time.perf_counter()
        try:
            return await self._invoke_async(body)
        except InvokeError as e:
            self._refused(e)
            raise
        finally:
            self.invoke_s += time.perf_counter() - t0

    def _refused(self, e: InvokeError) -> None:
        self.rejected += 1
        log_event(self.who, "refused", logging.WARNING, code=e.code, status=e.status, message=e.message[:200])

    # The checks of one call, shared by both paths (CPU only; the callers do the I/O).

    def _parse(self, body: Any) -> tuple[Voucher, bytes, Any, int]:
        """The request's voucher, signature, input and the input's MU (400/413 otherwise)."""
        if not isinstance(body, dict) or "input" not in body:
            raise InvokeError(400, "bad_request", "send a JSON object {credential_id, input, voucher, signature}")
        payload = body.get("input")
        if body.get("voucher") is None or not body.get("signature"):
            raise InvokeError(
                400,
                "missing_voucher",
                "every call carries the next cumulative voucher and its "
                "signature: GET /quote, sign the 'next' counters, then POST /invoke",
            )
        try:
            v = voucher_from_json(body["voucher"])
            _check_ranges(v)
            sig = _sig(body["signature"])
            credential_id = int(body.get("credential_id", v.credential_id))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvokeError(400, "bad_request", f"malformed voucher or signature: {exc}") from None
        if credential_id != v.credential_id:
            raise InvokeError(400, "bad_request", "credential_id differs from the voucher's credential")
        if to_checksum_address(v.node) != self.address:
            raise InvokeError(400, "bad_request", f"the voucher names node {v.node}; this node is {self.address}")
        return v, sig, payload, self._mu(payload)

    @staticmethod
    def _check_credential(v: Voucher, info: CredentialInfo) -> None:
        if not info.ok:
            raise InvokeError(403, "credential_refused", info.reason)
        if info.until and v.issued_at >= info.until:  # the meter pays usage dated before it only
            raise InvokeError(
                403,
                "credential_refused",
                f"credential {v.credential_id} is revoked or expired from {info.until} (chain time): usage "
                f"dated at or after it is never paid",
            )
        if to_checksum_address(v.payer) != info.holder:
            raise InvokeError(
                403, "credential_refused", f"the voucher's payer {v.payer} is not the credential holder {info.holder}"
            )

    def _refuse(self, v: Voucher, status: int, code: str, message: str) -> InvokeError:
        """A refusal after the voucher was parsed: it carries the node-signed ack naming it."""
        return InvokeError(status, code, message, self.ack(v.credential_id, v.payer, refused=v, code=code))

    def _check_voucher(
        self, v: Voucher, sig: bytes, sha: str, ch: _Channel, now: int
    ) -> tuple[bool, bytes | None, str | None]:
        """Under the channel's lock: (replay, digest, signer). A replay is the channel's last
        accepted voucher re-sent with the same input (its answer was lost: served again, charged
        nothing more); otherwise the voucher's deadline, issued_at, price and signature."""
        prev = ch.accepted
        if ch.voucher is not None and v == ch.voucher and sig == ch.signature:
            if sha != ch.input_sha:
                raise self._refuse(
                    v,
                    409,
                    "replayed",
                    f"this voucher was accepted for another input; the channel is at {counters_json(prev)}",
                )
            return True, None, None
        if v.deadline < now + self.min_deadline_s:
            raise self._refuse(
                v,
                400,
                "deadline",
                f"voucher deadline {v.deadline} is too close: sign with a deadline "
                f">= {now + self.min_deadline_s} (chain time + {self.min_deadline_s} s)",
            )
        if not now - self.settlement_window // 2 <= v.issued_at <= now + self.max_skew_s:
            raise self._refuse(
                v,
                400,
                "issued_at",
                f"voucher issued_at {v.issued_at} must be the call's time (chain "
                f"time {now}, within {self.max_skew_s} s ahead): sign with issued_at = now",
            )
        if v.node_price_per_mu < self.price_per_mu:
            raise self._refuse(
                v,
                402,
                "underpaid",
                f"this node charges {self.price_per_mu} per MU; the voucher offers {v.node_price_per_mu}",
            )
        vd = digest(v, self.domain)
        try:
            signer = recover_signer(v, self.domain, sig, vd)
        except VoucherError as exc:
            raise self._refuse(v, 401, "bad_signature", str(exc)) from None
        return False, vd, signer

    def _check_counters(
        self, v: Voucher, sig: bytes, info: CredentialInfo, prev: tuple, now: int, extra: list, signer: str, mu: int
    ) -> tuple[int, int]:
        """The meter's voucher rules and "exactly the next voucher": (unit price, this call's
        cost)."""
        try:
            d_mu, d_calls, d_fail, d_lat = verify_voucher(
                v,
                sig,
                self.domain,
                holder=info.holder,
                previous=prev,
                now=now,
                node=self.address,
                extra_signers=extra,
                settlement_window=self.settlement_window,
                max_skew_s=self.max_skew_s,
                signer=signer,
            )
        except VoucherError as exc:
            msg = str(exc)
            if "adds nothing" in msg:
                raise self._refuse(v, 409, "replayed", f"{msg}; the channel is at {counters_json(prev)}") from None
            if "decreased" in msg:
                raise self._refuse(v, 409, "stale", f"{msg}; GET /channel for the channel's counters") from None
            if "signed by" in msg or "signature" in msg:
                raise self._refuse(v, 401, "bad_signature", msg) from None
            if "deadline" in msg:
                raise self._refuse(v, 400, "deadline", msg) from None
            raise self._refuse(v, 422, "wrong_counters", msg) from None
        if d_mu < mu:
            raise self._refuse(
                v, 402, "underpaid", f"this call is {mu} MU; the voucher adds {d_mu} MU over the last accepted one"
            )
        if d_mu != mu or d_calls != 1 or d_fail != 0 or not 0 <= d_lat <= MAX_LATENCY_DELTA_MS:
            raise self._refuse(
                v,
                422,
                "wrong_counters",
                f"expected exactly the next voucher {counters_json((prev[0] + mu, prev[1] + 1, prev[2], prev[3]))}"
                f" (+ latency >= 0), got deltas mu={d_mu} calls={d_calls} failures={d_fail} "
                f"latency={d_lat}",
            )
        unit = info.price_per_mu + v.node_price_per_mu
        return unit, d_mu * unit

    def _escrow_short(self, v: Voucher, info: CredentialInfo, owed: int, have: int) -> InvokeError:
        return self._refuse(
            v,
            402,
            "escrow_short",
            f"the holder's escrow ({have}) does not cover the unsettled usage ({owed}): deposit into the "
            "UsageMeter, then resend this same voucher",
        )

    @staticmethod
    def _price_channel(ch: _Channel, info: CredentialInfo) -> None:
        """The unit price of a channel read back from the store (its last voucher was accepted
        by an earlier run): its unsettled usage counts in `_owed` from the first call on."""
        if ch.unit_price == 0 and ch.voucher is not None:
            ch.unit_price = info.price_per_mu + ch.voucher.node_price_per_mu

    @staticmethod
    def _apply(ch: _Channel, v: Voucher, sig: bytes, vd: bytes | None, sha: str, unit: int) -> None:
        """The channel's memory after its voucher was committed."""
        ch.accepted, ch.voucher, ch.signature, ch.digest, ch.input_sha = v.counters(), v, sig, vd, sha
        ch.ack = None
        ch.unit_price = unit

    def _run_model(self, payload: Any) -> tuple[Any, float]:
        t0 = time.perf_counter()
        try:
            result = self.runtime.run(payload)
        except InputError as exc:  # accepted and paid, but the input fails: the consumer gets the error
            result = {"error": "bad_input", "message": str(exc)}
        model_s = time.perf_counter() - t0
        self._model_ewma = 0.8 * self._model_ewma + 0.2 * model_s
        return result, model_s

    def _answer(
        self, v: Voucher, sig: bytes, mu: int, result: Any, model_s: float, replay: bool, ack: dict, now: int
    ) -> dict[str, Any]:
        self.model_s += model_s
        if replay:
            self.replayed += 1
        else:
            self.batcher.add(v, sig)
            self.served += 1
        return {
            "result": result,
            "mu": mu,
            "latency_ms": int(model_s * 1000),
            "node": self.address,
            "capsule": self.capsule_id,
            "cumulative": counters_json(v.counters()),
            "replayed": replay,
            "ack": ack,
            "chain_time": now,
            "min_deadline": now + self.min_deadline_s,
        }

    def _invoke(self, body: Any) -> dict[str, Any]:
        v, sig, payload, mu = self._parse(body)
        now = self.chain_time()
        info = self.credential(v.credential_id, v.purpose, now)
        self._check_credential(v, info)
        ch = self._channel(v.credential_id, v.payer)
        self._price_channel(ch, info)
        sha = input_digest(payload)
        with ch.lock:  # calls of one channel are ordered; other channels run in parallel
            replay, vd, signer = self._check_voucher(v, sig, sha, ch, now)
            if not replay:
                prev = ch.accepted
                extra = (
                    [signer] if signer != info.holder and self._delegate_ok(info.holder, signer, v.issued_at) else []
                )
                unit, cost = self._check_counters(v, sig, info, prev, now, extra, signer, mu)
                owed = self._reserve(v.payer, cost, self._available(info.holder, info.token, fresh=False))
                if owed is not None:
                    have = self._available(info.holder, info.token, fresh=True)
                    owed = self._reserve(v.payer, cost, have)
                    if owed is not None:
                        raise self._escrow_short(v, info, owed, have)
                try:
                    committed = self._commit.accept((v, sig, prev, sha, ch.settled))
                    if committed:
                        self._apply(ch, v, sig, vd, sha, unit)
                finally:
                    self._unreserve(v.payer, cost)
                if not committed:
                    raise self._refuse(
                        v, 409, "stale", "another call on this channel was accepted meanwhile: GET /channel"
                    )
            result, model_s = self._run_model(payload)
            ack = self.ack(v.credential_id, v.payer)
        return self._answer(v, sig, mu, result, model_s, replay, ack, now)

    async def _io(self, fn, *args):
        """A blocking read off the event loop (a cache miss)."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _invoke_async(self, body: Any) -> dict[str, Any]:
        v, sig, payload, mu = self._parse(body)
        t, at = self._time
        now = t if time.monotonic() - at < self.chain_time_ttl_s else await self._io(self.chain_time)
        info = self._credential_cached(v.credential_id, v.purpose)
        if info is None:
            info = await self._io(self._read_credential, v.credential_id, v.purpose, now)
        self._check_credential(v, info)
        ch = self._channels.get(_channel_key(v.credential_id, v.payer))
        if ch is None:
            ch = await self._io(self._channel, v.credential_id, v.payer)
        self._price_channel(ch, info)
        sha = input_digest(payload)
        if ch.alock is None:
            ch.alock = asyncio.Lock()
        async with ch.alock:  # calls of one channel are ordered; other channels interleave
            replay, vd, signer = self._check_voucher(v, sig, sha, ch, now)
            if not replay:
                prev = ch.accepted
                extra = []
                if signer != info.holder:
                    hit = self._delegates.get((info.holder, signer))  # `_delegate_ok`'s cache, read here
                    fresh = hit is not None and time.monotonic() - hit[1] < self.credential_ttl_s
                    if fresh and hit[0] > v.issued_at:
                        extra = [signer]
                    elif await self._io(self._delegate_ok, info.holder, signer, v.issued_at):
                        extra = [signer]
                unit, cost = self._check_counters(v, sig, info, prev, now, extra, signer, mu)
                have = self._escrow_cached(info.holder, info.token)
                if have is None:
                    have = await self._io(self._available, info.holder, info.token, False)
                owed = self._reserve(v.payer, cost, have)  # no await between the check and the reservation
                if owed is not None:
                    have = await self._io(self._available, info.holder, info.token, True)
                    owed = self._reserve(v.payer, cost, have)
                    if owed is not None:
                        raise self._escrow_short(v, info, owed, have)

                def settle(committed: bool) -> None:  # in the commit task: memory first, then the reservation
                    if committed:
                        self._apply(ch, v, sig, vd, sha, unit)
                    self._unreserve(v.payer, cost)

                if not await self._acommit.accept((v, sig, prev, sha, ch.settled), settle):
                    raise self._refuse(
                        v, 409, "stale", "another call on this channel was accepted meanwhile: GET /channel"
                    )
            if self._model_ewma <= self.inline_model_s:
                result, model_s = self._run_model(payload)  # a fast model runs on the loop (no hand-off)
            else:
                result, model_s = await self._io(self._run_model, payload)
            ack = self.ack(v.credential_id, v.payer)
        return self._answer(v, sig, mu, result, model_s, replay, ack, now)

    # -- ingestion -------------------------------------------------------------------------

    def _enqueue(self, vouchers: list[tuple], signatures: list[bytes]) -> None:
        self._queue.put([(Voucher(*t), s) for t, s in zip(vouchers, signatures)])

    def _ingest(self, items: list[tuple[Voucher, bytes]]) -> int:
        """One `UsageMeter.ingest` for `items`, then record what the meter settled per channel."""
        n = int(self.store.get("ingests", 0)) + 1
        self.store.set("ingests", n)
        intent = f"ingest:{n}"
        note = None
        receipt = None
        with self._chain:  # transactions only; calls keep being served meanwhile
            try:
                receipt = self.sender.send(
                    intent,
                    self.meter.ingest,
                    [v.as_tuple() for v, _ in items],
                    [s for _, s in items],
                    action="ingest",
                    payload={"channels": [v.credential_id for v, _ in items]},
                )
            except Exception as exc:  # a lone voucher the meter refuses reverts with its reason
                if is_transient(exc):  # the RPC, not the meter: nothing is refused, the next round retries
                    log_event(self.who, "ingest_deferred", logging.WARNING, intent=intent, vouchers=len(items))
                    raise _Deferred(str(exc).splitlines()[0][:200]) from exc
                note = str(exc).splitlines()[0][:200]
                if not (len(items) == 1 and _voucher_refusal(note)):
                    # The transaction failed, not a voucher (out of gas; a wallet that cannot
                    # pay for gas): nothing was applied and nothing refused. The vouchers stay
                    # pending and go again in a later batch, estimated afresh.
                    self.ingest_retries += 1
                    log_event(self.who, "ingest_retry", logging.WARNING, intent=intent, vouchers=len(items), error=note)
                    for v, s in items:
                        self.batcher.add(v, s)
                    return 0
        refused: set[tuple[int, str]] | None = None
        if receipt is not None and note is None:  # the receipt says which vouchers the meter refused
            try:
                refused = {
                    (int(e.credential_id), to_checksum_address(e.payer))
                    for e in receipt.decode_logs(self.meter.VoucherRejected)
                }
            except Exception:  # noqa: BLE001 - fall back to reading every channel
                refused = None
        applied = 0
        marks = []
        for v, _ in items:
            if refused is not None and (v.credential_id, to_checksum_address(v.payer)) not in refused:
                settled = v.counters()  # applied: the meter's settled counters are this voucher's
            else:
                settled = tuple(int(x) for x in self.meter.settled(v.credential_id, self.address, v.payer))[:4]
            marks.append((v.credential_id, v.payer, settled, v.counters(), note or "rejected by the meter"))
        statuses = self.store.mark_settled_many(marks)  # one transaction for the batch
        for (v, _), (_, _, settled, _, _), status in zip(items, marks, statuses):
            ch = self._channel(v.credential_id, v.payer)
            cred = self._creds.get((v.credential_id, v.purpose))
            key = (v.payer, cred.token if cred else "")
            # What the meter took from the escrow: the MU it settled at the licence's and the
            # voucher's prices (exact, also for a voucher an earlier run accepted).
            unit = (cred.price_per_mu if cred else 0) + v.node_price_per_mu
            paid = max(0, settled[0] - ch.settled[0]) * unit
            ch.settled = settled
            hit = self._escrow.get(key)
            if status == "rejected" or hit is None:
                self._escrow.pop(key, None)  # the next call reads the escrow afresh
            else:  # the meter paid `paid` out of the escrow: keep the cache (its age) without a read
                self._escrow[key] = (max(0, hit[0] - paid), hit[1])
            applied += status != "rejected"
            if status == "rejected":
                log_event(
                    self.who,
                    "voucher_rejected",
                    logging.WARNING,
                    credential=v.credential_id,
                    note=note or "see VoucherRejected",
                )
        self.ingested_batches += 1
        log_event(self.who, "ingested", intent=intent, vouchers=len(items), applied=applied)
        return applied

    def pump(self) -> int:
        """Flush the batcher if due (age or size) and ingest everything queued."""
        with self._ingest_lock:
            if len(self.batcher) and (self.batcher.due() or len(self.batcher) >= self.batch_size):
                self.batcher.flush()
            done = 0
            while True:
                items, self._deferred = self._deferred, None
                if items is None:
                    try:
                        items = self._queue.get_nowait()
                    except queue.Empty:
                        return done
                    self._queue.task_done()
                cpu0 = time.thread_time()
                try:
                    done += self._ingest(items)
                except Exception as exc:  # an RPC outage past the sender's retries: first in the next round
                    if not isinstance(exc, _Deferred) and not is_transient(exc):
                        raise
                    self._deferred = items
                    return done
                finally:
                    self.ingest_cpu_s += time.thread_time() - cpu0

    def flush_now(self) -> int:
        """Ingest everything accepted so far, now (demo, tests, shutdown)."""
        if len(self.batcher):
            self.batcher.flush()
        return self.pump()

    def start_flusher(self, interval: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.pump()
                except Exception as exc:  # the vouchers stay in SQLite; the next round retries
                    log_event(self.who, "ingest_failed", logging.ERROR, error=str(exc).splitlines()[0][:200])

        self._flusher = threading.Thread(target=loop, name="voucher-flusher", daemon=True)
        self._flusher.start()

    def stop(self, flush: bool = True) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
        if flush:
            self.flush_now()


def _erc20(address: str):
    from codexfield import contracts

    return contracts.erc20(address)  # the standard ERC-20 ABI (Vyper's IERC20 + IERC20Detailed)


def _hash_signer(account: Any):
    """Sign channel acks with an ape account that does not expose its key (a keyfile account:
    unlock it with autosign for a long-running node)."""

    def sign(h: bytes) -> bytes:
        sig = account.sign_raw_msghash(h)
        if sig is None:
            raise RuntimeError(f"the node account {account.address} refused to sign a channel acknowledgment")
        v = sig.v if sig.v >= 27 else sig.v + 27
        return bytes(sig.r).rjust(32, b"\0") + bytes(sig.s).rjust(32, b"\0") + bytes([v])

    return sign


def _check_ranges(v: Voucher) -> None:
    """Every voucher number within its EIP-712 type (a ValueError: answered 400, not 500)."""
    for name, bits in (
        ("credential_id", 256),
        ("purpose", 256),
        ("cumulative_mu", 256),
        ("cumulative_calls", 64),
        ("cumulative_failures", 64),
        ("cumulative_latency_ms", 64),
        ("node_price_per_mu", 256),
        ("issued_at", 64),
        ("deadline", 64),
    ):
        if not 0 <= getattr(v, name) < 2**bits:
            raise ValueError(f"voucher.{name} must be an integer in 0..2^{bits}-1")


def _sig(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("'signature' must be a 0x-hex string")
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


voucher_json = voucher_to_json  # the wire form of a voucher (codexfield.sdk.metering)


# ---------------------------------------------------------------------------------- HTTP


def _json_dumps():
    """The HTTP layer's JSON encoder: orjson when installed (the `speed` extra), falling back to
    the standard library for what orjson refuses (integers beyond 64 bits). Bodies are parsed by
    the standard library: orjson reads such integers as floats."""
    import json

    try:
        import orjson
    except ImportError:
        return json.dumps

    def dumps(obj: Any) -> str:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return json.dumps(obj)

    return dumps


def make_app(gateway: Gateway):
    from aiohttp import web

    dumps = _json_dumps()

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def json_response(data: Any, status: int = 200) -> web.Response:
        return web.json_response(data, status=status, dumps=dumps)

    def err(e: InvokeError):
        return json_response(e.body(), status=e.status)

    async def health(request: web.Request) -> web.Response:
        try:
            return json_response(gateway.health())
        except Exception as exc:  # noqa: BLE001 - an unhealthy node answers 503, probers count a miss
            return json_response({"status": "unhealthy", "error": str(exc)[:200]}, status=503)

    async def quote(request: web.Request) -> web.Response:
        try:
            cred = int(request.query["credential"])
            n = int(request.query.get("input_len", "0"))
            purpose = int(request.query.get("purpose", str(DEFAULT_PURPOSE)))
            if not (0 <= cred < 2**256 and 0 <= purpose < 2**256):
                raise ValueError("out of range")
        except (KeyError, ValueError):
            return json_response(
                {
                    "error": "bad_request",
                    "message": "use /quote?credential=N&input_len=L (credential and purpose: integers in 0..2^256-1)",
                },
                status=400,
            )
        try:
            return json_response(await run(gateway.quote, cred, n, purpose))
        except InvokeError as e:
            return err(e)

    async def body_of(request: web.Request) -> Any:
        try:
            return await request.json()
        except web.HTTPRequestEntityTooLarge:
            raise InvokeError(413, "input_too_long", f"the request body is at most {MAX_BODY_BYTES} bytes") from None
        except Exception:
            raise InvokeError(400, "bad_request", "the body must be JSON") from None

    async def quote_post(request: web.Request) -> web.Response:
        try:
            body = await body_of(request)
            try:
                cred = int(body["credential_id"])
                purpose = int(body.get("purpose", DEFAULT_PURPOSE))
                payload = body["input"]
                if not (0 <= cred < 2**256 and 0 <= purpose < 2**256):
                    raise ValueError("out of range")
            except (KeyError, TypeError, ValueError):
                raise InvokeError(400, "bad_request", "POST /quote {credential_id, input, purpose?}") from None
            return json_response(await run(lambda: gateway.quote(cred, None, purpose, payload=payload)))
        except InvokeError as e:
            return err(e)

    async def channel(request: web.Request) -> web.Response:
        try:
            cred = int(request.query["credential"])
            payer = to_checksum_address(request.query["payer"])
            if not 0 <= cred < 2**256:
                raise ValueError("out of range")
        except (KeyError, ValueError, TypeError):
            return json_response(
                {"error": "bad_request", "message": "use /channel?credential=N&payer=0x..."}, status=400
            )
        return json_response(await run(gateway.channel_state, cred, payer))

    # The hot path on the event loop; a subclass that overrides the blocking `invoke` (a test's
    # degraded node) keeps it, in a worker thread.
    on_loop = type(gateway).invoke is Gateway.invoke

    async def invoke(request: web.Request) -> web.Response:
        try:
            body = await body_of(request)
            if on_loop:
                return json_response(await gateway.invoke_async(body))
            return json_response(await run(gateway.invoke, body))
        except InvokeError as e:
            return err(e)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/health", health)
    app.router.add_get("/quote", quote)
    app.router.add_post("/quote", quote_post)
    app.router.add_get("/channel", channel)
    app.router.add_post("/invoke", invoke)
    return app


def _new_loop() -> asyncio.AbstractEventLoop:
    """An event loop for the HTTP server: uvloop's when installed (the `speed` extra)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _freeze_gc() -> None:
    """Move every object alive now (ape, the contracts' ABIs, the node's caches: ~10^6 objects)
    out of the cyclic collector's reach: a full collection over them takes ~0.4 s on this machine
    and would stall every call in flight when it runs; what the calls allocate later is still
    collected."""
    import gc

    gc.collect()
    gc.freeze()


class GatewayServer:
    """The HTTP server in a background thread (demo, tests): `start()`, `.url`, `stop()`."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0, *, freeze_gc: bool = True):
        self.gateway = gateway
        self.freeze_gc = freeze_gc
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, flusher: bool = True) -> GatewayServer:
        from aiohttp import web

        def main() -> None:
            from concurrent.futures import ThreadPoolExecutor

            self._loop = _new_loop()
            asyncio.set_event_loop(self._loop)
            # Blocking work runs in threads: channels are independent (the per-channel lock orders one).
            self._loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="gateway"))
            self._runner = web.AppRunner(make_app(self.gateway), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # the bound port when 0 was asked
            self._ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=main, name="node-gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the gateway did not start within 10 s")
        if flusher:
            self.gateway.start_flusher()
            self.gateway.start_watcher()
        if self.freeze_gc:
            _freeze_gc()
        return self

    def stop(self, flush: bool = True) -> None:
        """Stop serving (idempotent); `flush` ingests what was accepted first."""
        if self._thread is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self.gateway.stop(flush=flush)


def serve_forever(gateway: Gateway, host: str, port: int) -> None:
    """Blocking server for `codexfield node serve` (Ctrl-C stops it after a final flush)."""
    server = GatewayServer(gateway, host, port).start()
    log_event("node", "serving", url=server.url, node=gateway.address, capsule=gateway.capsule_id)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(flush=True)
