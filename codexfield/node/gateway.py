"""The reference node gateway: serves invocations of one model capsule for metered vouchers.

Protocol (JSON over HTTP):

    GET  /health                         -> {status, node, capsule, chain_id, meter, price_per_mu, ...}
    GET  /quote?credential=N&input_len=L -> {mu, node_price_per_mu, license_price_per_mu, purpose,
                                             previous: {cumulative_*}, next: {cumulative_*},
                                             chain_time, min_deadline, domain}
    POST /invoke {credential_id, input, voucher, signature}
                                         -> 200 {result, mu, latency_ms, cumulative}
                                          | 4xx {error: <code>, message: <what to do>}

A voucher is served on only if it is *exactly* the channel's next one: previous cumulative
counters + this call's MU, one more call, no new failure, a non-negative latency delta (the
consumer's measurement of its previous call), this node, this node's price or more, a
deadline at least `min_deadline_s` ahead, signed by the credential's holder or a live
`sigAuth` delegate of the holder (IdentityRegistry), with the UsageMeter's EIP-712 rules
(`codexfield.sdk.metering.verify_voucher`), on a credential that `LicenseManager.authorize`
accepts for the voucher's purpose and this capsule, with enough escrow to pay it. The voucher
is committed to the node's SQLite file before the model runs, then queued in a
`VoucherBatcher`; a background thread ingests batches through `UsageMeter.ingest` when they
are old or large enough, and records what the meter settled.

Error codes: 400 `bad_request` / `missing_voucher` / `deadline`; 401 `bad_signature`;
402 `underpaid` / `escrow_short`; 403 `credential_refused`; 409 `replayed` / `stale`;
413 `input_too_long`; 422 `wrong_counters`; 503 `busy`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address

from codexfield import scopes
from codexfield.did import SIG_AUTH
from codexfield.keepers.base import TxSender, log_event, retry
from codexfield.node.model import MAX_INPUT_CHARS, METER_NAME, TextClassifier, mu_for
from codexfield.node.store import NodeStore
from codexfield.sdk.metering import Domain, Voucher, VoucherBatcher, VoucherError, recover_signer, verify_voucher

DEFAULT_PURPOSE = scopes.mask_of(["inference"])
MAX_LATENCY_DELTA_MS = 600_000
MAX_BODY_BYTES = 64 * 1024  # larger POST bodies answer 413


class InvokeError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


@dataclass
class CredentialInfo:
    ok: bool
    holder: str
    capsule_id: int
    price_per_mu: int
    token: str
    reason: str
    checked_at: float


def counters_json(c: tuple[int, int, int, int]) -> dict[str, str]:
    return {"cumulative_mu": str(c[0]), "cumulative_calls": str(c[1]), "cumulative_failures": str(c[2]),
            "cumulative_latency_ms": str(c[3])}


class Gateway:
    """Framework-free core of the node (the HTTP layer below only translates)."""

    who = "node"

    def __init__(self, *, capsule_id: int, model: TextClassifier, account: Any, contracts: dict[str, Any],
                 store: NodeStore, price_per_mu: int = 1_000, batch_size: int = 32, max_age_s: float = 5.0,
                 min_deadline_s: int = 600, credential_ttl_s: float = 30.0, hooks: dict | None = None,
                 max_skew_s: int = 60):
        self.capsule_id = int(capsule_id)
        self.model = model
        self.account = account
        self.address = to_checksum_address(account.address)
        self.lm = contracts["LicenseManager"]
        self.meter = contracts["UsageMeter"]
        self.staking = contracts.get("AccessStaking")
        self.identity = contracts.get("IdentityRegistry")
        self.store = store
        self.price_per_mu = int(price_per_mu)
        self.batch_size = batch_size
        self.min_deadline_s = min_deadline_s
        self.credential_ttl_s = credential_ttl_s
        self.domain = Domain.of(self.meter)
        self.chain_id = self.domain.chain_id
        self.settlement_window = int(self.meter.settlement_window())
        self.max_skew_s = int(max_skew_s)
        self.sender = TxSender(account, store, self.who, hooks=hooks)
        self._chain = threading.RLock()
        self._serve = threading.Lock()
        self._creds: dict[tuple[int, int], CredentialInfo] = {}
        self._delegates: dict[tuple[str, str], tuple[bool, float]] = {}
        self._queue: "queue.Queue[list[tuple[Voucher, bytes]]]" = queue.Queue()
        self.batcher = VoucherBatcher(self._enqueue, max_batch=64, max_age_s=max_age_s)
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self.served = 0
        self.rejected = 0
        self.ingested_batches = 0
        # Resume: settle what an earlier run signed, re-queue what it accepted but did not settle.
        with self._chain:
            self.sender.reconcile()
        for v, sig in store.pending():
            self.batcher.add(v, sig)

    # -- chain helpers ---------------------------------------------------------------------

    def chain_time(self) -> int:
        from ape import chain

        with self._chain:
            return int(retry(lambda: chain.blocks.head.timestamp, who=self.who, what="head"))

    def credential(self, credential_id: int, purpose: int, now: int) -> CredentialInfo:
        """Chain-verified credential check, cached for `credential_ttl_s`."""
        key = (int(credential_id), int(purpose))
        hit = self._creds.get(key)
        if hit is not None and time.monotonic() - hit.checked_at < self.credential_ttl_s:
            return hit
        with self._chain:
            try:
                cred = self.lm.credential(credential_id)
                holder = str(self.lm.ownerOf(credential_id))
            except Exception:
                info = CredentialInfo(False, "", 0, 0, "", f"credential {credential_id} does not exist", time.monotonic())
                self._creds[key] = info
                return info
            terms = self.lm.terms(cred.terms_id)
            ok = bool(self.lm.authorize(credential_id, holder, purpose, now))
        reason = ""
        if int(terms.capsule_id) != self.capsule_id:
            ok, reason = False, f"credential {credential_id} licenses capsule {terms.capsule_id}, this node serves {self.capsule_id}"
        elif not ok:
            reason = (f"credential {credential_id} does not authorize purpose {scopes.names_of(purpose)} now "
                      "(expired, revoked, or outside the licence scope)")
        info = CredentialInfo(ok, to_checksum_address(holder), int(terms.capsule_id), int(terms.price_per_mu),
                              str(terms.payment_token), reason, time.monotonic())
        self._creds[key] = info
        return info

    def _delegate_ok(self, holder: str, signer: str, issued_at: int) -> bool:
        """Whether `signer` is a sigAuth delegate of `holder` valid after `issued_at` (the meter's rule)."""
        if self.identity is None:
            return False
        key = (holder, signer)
        hit = self._delegates.get(key)
        if hit is None or time.monotonic() - hit[1] >= self.credential_ttl_s:
            with self._chain:
                until = int(self.identity.delegates(holder, keccak(SIG_AUTH), signer))
            hit = (until, time.monotonic())
            self._delegates[key] = hit
        return hit[0] > issued_at

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
                    raise RuntimeError(f"the node {self.address} holds {have} stake tokens, needs {stake}: "
                                       "fund it with the stake token (CDX) before registering")
                if int(token.allowance(self.address, self.staking.address)) < stake:
                    token.approve(self.staking.address, stake, sender=self.account)
                self.staking.register_node(endpoint, services, region_bytes(region), "0x" + "00" * 20, stake,
                                           sender=self.account)
                log_event(self.who, "registered", node=self.address, endpoint=endpoint, stake=stake)
                return "registered"
            if status == 3:
                raise RuntimeError(f"node {self.address} was ejected from AccessStaking; use a new node key")
            if str(self.staking.endpoint(self.address)) != endpoint:
                self.staking.update_node(endpoint, services, region_bytes(region), "0x" + "00" * 20,
                                         self.price_per_mu, sender=self.account)
                log_event(self.who, "endpoint_updated", node=self.address, endpoint=endpoint)
                return "updated"
        return "already registered"

    # -- protocol --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "node": self.address, "capsule": self.capsule_id, "chain_id": self.chain_id,
                "meter": self.domain.verifying_contract, "meter_name": METER_NAME, "price_per_mu": str(self.price_per_mu),
                "served": self.served, "pending_channels": len(self.batcher)}

    def quote(self, credential_id: int, input_len: int, purpose: int = DEFAULT_PURPOSE) -> dict[str, Any]:
        if input_len < 0 or input_len > MAX_INPUT_CHARS:
            raise InvokeError(413, "input_too_long", f"inputs are 0..{MAX_INPUT_CHARS} characters")
        now = self.chain_time()
        info = self.credential(credential_id, purpose, now)
        prev = self.store.previous(credential_id, info.holder) if info.holder else (0, 0, 0, 0)
        mu = mu_for(input_len)
        return {
            "node": self.address, "capsule": self.capsule_id, "credential_id": str(credential_id),
            "credential_ok": info.ok, "credential_note": info.reason,
            "mu": mu, "meter_name": METER_NAME, "node_price_per_mu": str(self.price_per_mu),
            "license_price_per_mu": str(info.price_per_mu), "payment_token": info.token,
            "cost": str(mu * (self.price_per_mu + info.price_per_mu)), "purpose": str(purpose),
            "previous": counters_json(prev),
            "next": counters_json((prev[0] + mu, prev[1] + 1, prev[2], prev[3])),
            "chain_time": now, "min_deadline": now + self.min_deadline_s, "payer": info.holder,
            "settlement_window": self.settlement_window,
            "domain": {"chain_id": self.chain_id, "verifying_contract": self.domain.verifying_contract,
                       "name": self.domain.name, "version": self.domain.version},
        }

    def invoke(self, body: Any) -> dict[str, Any]:
        """Check, commit, serve. Raises InvokeError (never serves) on any refusal."""
        try:
            return self._invoke(body)
        except InvokeError as e:
            self.rejected += 1
            log_event(self.who, "refused", logging.WARNING, code=e.code, status=e.status, message=e.message[:200])
            raise

    def _invoke(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvokeError(400, "bad_request", "send a JSON object {credential_id, input, voucher, signature}")
        text = body.get("input")
        if not isinstance(text, str):
            raise InvokeError(400, "bad_request", "'input' must be a string")
        if len(text) > MAX_INPUT_CHARS:
            raise InvokeError(413, "input_too_long", f"inputs are at most {MAX_INPUT_CHARS} characters")
        if body.get("voucher") is None or not body.get("signature"):
            raise InvokeError(400, "missing_voucher", "every call carries the next cumulative voucher and its "
                              "signature: GET /quote, sign the 'next' counters, then POST /invoke")
        try:
            v = _voucher(body["voucher"])
            _check_ranges(v)
            sig = _sig(body["signature"])
            credential_id = int(body.get("credential_id", v.credential_id))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvokeError(400, "bad_request", f"malformed voucher or signature: {exc}") from None
        if credential_id != v.credential_id:
            raise InvokeError(400, "bad_request", "credential_id differs from the voucher's credential")
        if to_checksum_address(v.node) != self.address:
            raise InvokeError(400, "bad_request", f"the voucher names node {v.node}; this node is {self.address}")
        now = self.chain_time()
        if v.deadline < now + self.min_deadline_s:
            raise InvokeError(400, "deadline", f"voucher deadline {v.deadline} is too close: sign with a deadline "
                              f">= {now + self.min_deadline_s} (chain time + {self.min_deadline_s} s)")
        if not now - self.settlement_window // 2 <= v.issued_at <= now + self.max_skew_s:
            raise InvokeError(400, "issued_at", f"voucher issued_at {v.issued_at} must be the call's time (chain time "
                              f"{now}, within {self.max_skew_s} s ahead): sign with issued_at = now")
        if v.node_price_per_mu < self.price_per_mu:
            raise InvokeError(402, "underpaid", f"this node charges {self.price_per_mu} per MU; the voucher offers "
                              f"{v.node_price_per_mu}")
        info = self.credential(v.credential_id, v.purpose, now)
        if not info.ok:
            raise InvokeError(403, "credential_refused", info.reason)
        if to_checksum_address(v.payer) != info.holder:
            raise InvokeError(403, "credential_refused", f"the voucher's payer {v.payer} is not the credential "
                              f"holder {info.holder}")

        with self._serve:  # one voucher per channel at a time; the store's compare-and-set backs it
            prev = self.store.previous(v.credential_id, v.payer)
            try:
                signer = recover_signer(v, self.domain, sig)
            except VoucherError as exc:
                raise InvokeError(401, "bad_signature", str(exc)) from None
            extra = [signer] if signer != info.holder and self._delegate_ok(info.holder, signer, v.issued_at) else []
            try:
                d_mu, d_calls, d_fail, d_lat = verify_voucher(v, sig, self.domain, holder=info.holder, previous=prev,
                                                              now=now, node=self.address, extra_signers=extra,
                                                              settlement_window=self.settlement_window,
                                                              max_skew_s=self.max_skew_s)
            except VoucherError as exc:
                msg = str(exc)
                if "adds nothing" in msg:
                    raise InvokeError(409, "replayed", f"{msg}; the channel is at {counters_json(prev)}") from None
                if "decreased" in msg:
                    raise InvokeError(409, "stale", f"{msg}; GET /quote for the channel's counters") from None
                if "signed by" in msg or "signature" in msg:
                    raise InvokeError(401, "bad_signature", msg) from None
                if "deadline" in msg:
                    raise InvokeError(400, "deadline", msg) from None
                raise InvokeError(422, "wrong_counters", msg) from None
            mu = mu_for(text)
            if d_mu < mu:
                raise InvokeError(402, "underpaid", f"this call is {mu} MU; the voucher adds {d_mu} MU over the last "
                                  "accepted one")
            if d_mu != mu or d_calls != 1 or d_fail != 0 or not 0 <= d_lat <= MAX_LATENCY_DELTA_MS:
                raise InvokeError(422, "wrong_counters",
                                  f"expected exactly the next voucher {counters_json((prev[0] + mu, prev[1] + 1, prev[2], prev[3]))}"
                                  f" (+ latency >= 0), got deltas mu={d_mu} calls={d_calls} failures={d_fail} "
                                  f"latency={d_lat}")
            unsettled = v.cumulative_mu - self.store.settled(v.credential_id, v.payer)[0]
            owed = unsettled * (info.price_per_mu + v.node_price_per_mu)
            with self._chain:
                escrow = int(self.meter.escrow(info.holder, info.token))
                # Escrow is shared by every node the payer uses and a pending withdrawal leaves after
                # the thaw: count only what stays (docs/THREAT_MODEL.md "one escrow, several nodes").
                pending = self.meter.withdrawals(info.holder, info.token)
                escrow -= min(escrow, int(pending.amount))
            if escrow < owed:
                raise InvokeError(402, "escrow_short", f"the holder's escrow ({escrow}) does not cover the "
                                  f"unsettled usage ({owed}): deposit into the UsageMeter first")
            if not self.store.accept(v, sig, prev):
                raise InvokeError(409, "stale", "another call on this channel was accepted meanwhile: quote again")

        t0 = time.perf_counter()
        result = self.model.predict(text)
        latency_ms = int((time.perf_counter() - t0) * 1000)
        self.batcher.add(v, sig)
        self.served += 1
        return {"result": result, "mu": mu, "latency_ms": latency_ms, "node": self.address,
                "capsule": self.capsule_id, "cumulative": counters_json(v.counters())}

    # -- ingestion -------------------------------------------------------------------------

    def _enqueue(self, vouchers: list[tuple], signatures: list[bytes]) -> None:
        self._queue.put([(Voucher(*t), s) for t, s in zip(vouchers, signatures)])

    def _ingest(self, items: list[tuple[Voucher, bytes]]) -> int:
        """One `UsageMeter.ingest` for `items`, then record what the meter settled per channel."""
        n = int(self.store.get("ingests", 0)) + 1
        self.store.set("ingests", n)
        intent = f"ingest:{n}"
        note = None
        with self._chain:
            try:
                self.sender.send(intent, self.meter.ingest, [v.as_tuple() for v, _ in items], [s for _, s in items],
                                 action="ingest", payload={"channels": [v.credential_id for v, _ in items]})
            except Exception as exc:  # a lone voucher the meter refuses reverts with its reason
                note = str(exc).splitlines()[0][:200]
            applied = 0
            for v, _ in items:
                settled = tuple(int(x) for x in self.meter.settled(v.credential_id, self.address, v.payer))[:4]
                status = self.store.mark_settled(v.credential_id, v.payer, settled, v.counters(),
                                                 note or "rejected by the meter")
                applied += status != "rejected"
                if status == "rejected":
                    log_event(self.who, "voucher_rejected", logging.WARNING, credential=v.credential_id,
                              note=note or "see VoucherRejected")
        self.ingested_batches += 1
        log_event(self.who, "ingested", intent=intent, vouchers=len(items), applied=applied)
        return applied

    def pump(self) -> int:
        """Flush the batcher if due (age or size) and ingest everything queued."""
        if len(self.batcher) and (self.batcher.due() or len(self.batcher) >= self.batch_size):
            self.batcher.flush()
        done = 0
        while True:
            try:
                items = self._queue.get_nowait()
            except queue.Empty:
                return done
            try:
                done += self._ingest(items)
            finally:
                self._queue.task_done()

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
        if flush:
            self.flush_now()


def _erc20(address: str):
    from codexfield import contracts

    return contracts.erc20(address)  # the standard ERC-20 ABI (Vyper's IERC20 + IERC20Detailed)


def _voucher(d: Any) -> Voucher:
    if not isinstance(d, dict):
        raise TypeError("'voucher' must be an object with the Voucher fields")
    return Voucher(
        credential_id=int(d["credential_id"]), node=to_checksum_address(d["node"]),
        payer=to_checksum_address(d["payer"]), purpose=int(d["purpose"]),
        cumulative_mu=int(d["cumulative_mu"]), cumulative_calls=int(d["cumulative_calls"]),
        cumulative_failures=int(d["cumulative_failures"]), cumulative_latency_ms=int(d["cumulative_latency_ms"]),
        node_price_per_mu=int(d["node_price_per_mu"]), issued_at=int(d["issued_at"]), deadline=int(d["deadline"]),
    )


def _check_ranges(v: Voucher) -> None:
    """Every voucher number within its EIP-712 type (a ValueError: answered 400, not 500)."""
    for name, bits in (("credential_id", 256), ("purpose", 256), ("cumulative_mu", 256), ("cumulative_calls", 64),
                       ("cumulative_failures", 64), ("cumulative_latency_ms", 64), ("node_price_per_mu", 256),
                       ("deadline", 64)):
        if not 0 <= getattr(v, name) < 2**bits:
            raise ValueError(f"voucher.{name} must be an integer in 0..2^{bits}-1")


def _sig(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("'signature' must be a 0x-hex string")
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def voucher_json(v: Voucher) -> dict[str, Any]:
    return {k: (str(x) if isinstance(x, int) else x) for k, x in v.as_message().items()}


# ---------------------------------------------------------------------------------- HTTP


def make_app(gateway: Gateway):
    from aiohttp import web

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def err(e: InvokeError):
        return web.json_response(e.body(), status=e.status)

    async def health(request: web.Request) -> web.Response:
        return web.json_response(gateway.health())

    async def quote(request: web.Request) -> web.Response:
        try:
            cred = int(request.query["credential"])
            n = int(request.query.get("input_len", "0"))
            purpose = int(request.query.get("purpose", str(DEFAULT_PURPOSE)))
            if not (0 <= cred < 2**256 and 0 <= purpose < 2**256):
                raise ValueError("out of range")
        except (KeyError, ValueError):
            return web.json_response({"error": "bad_request", "message": "use /quote?credential=N&input_len=L "
                                      "(credential and purpose: integers in 0..2^256-1)"}, status=400)
        try:
            return web.json_response(await run(gateway.quote, cred, n, purpose))
        except InvokeError as e:
            return err(e)

    async def invoke(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "input_too_long", "message": "the request body is at most "
                                      f"{MAX_BODY_BYTES} bytes"}, status=413)
        except Exception:
            return web.json_response({"error": "bad_request", "message": "the body must be JSON"}, status=400)
        try:
            return web.json_response(await run(gateway.invoke, body))
        except InvokeError as e:
            return err(e)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/health", health)
    app.router.add_get("/quote", quote)
    app.router.add_post("/invoke", invoke)
    return app


class GatewayServer:
    """The HTTP server in a background thread (demo, tests): `start()`, `.url`, `stop()`."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0):
        self.gateway = gateway
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, flusher: bool = True) -> "GatewayServer":
        from aiohttp import web

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
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
