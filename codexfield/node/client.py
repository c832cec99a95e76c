"""Consumer side of the node protocol: quote, sign the next cumulative voucher, invoke, recover.

    ledger = ConsumerLedger("~/.codexfield/ledger.sqlite", Domain.of(meter), hot_key)
    client = NodeClient("http://127.0.0.1:8700", ledger)
    out = client.invoke(credential_id, "my parcel never arrived")     # {"result": {...}, "mu": 1, ...}

Channel recovery. The ledger records each call *before* its voucher leaves the process: the
voucher, its signature, the input and the node-acknowledged counters it builds on (`InFlight`).
Every node answer carries the node-signed ack of the channel's last accepted voucher; the
client checks the signature, that the node never acknowledges less than it acknowledged before
or than the meter settled (`settled=`, a callable over the chain), and resolves an unresolved
call (after a crash of either side, a lost answer or a refusal) before signing anything new:

- the node acknowledges the in-flight voucher: it accepted it; the client re-sends the very
  same voucher and input and the node re-serves the call without charging again;
- the node is still at the counters the voucher builds on: it never accepted it; the client
  re-sends it (after `402 escrow_short`, deposit first); if it has to be re-signed (deadline,
  `issued_at` too old, `401 bad_signature` after the key was fixed), it is re-signed with the
  SAME counters: never a lower or conflicting voucher, never a new credential;
- anything else is `ChannelOutOfSync` (the node lost or forged state; its signed acks are the
  evidence).

A refused call is never charged: the node refuses before it accepts, and the consumer's next
voucher repeats the refused one's counters for the same call instead of adding to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from codexfield.sdk.metering import ConsumerLedger, InFlight, VoucherError, verify_ack, voucher_to_json

RESEND_RESIGNED = ("bad_signature", "deadline", "issued_at")


class NodeError(RuntimeError):
    """The node refused the call (`status`, `code` and its message; `ack` when it signed one)."""

    def __init__(self, status: int, code: str, message: str, ack: dict | None = None):
        super().__init__(f"node refused ({status} {code}): {message}")
        self.status, self.code, self.message, self.ack = status, code, message, ack


class NodeUnavailable(NodeError):
    """The node did not answer (down, crashed, unreachable): the call stays in flight."""

    def __init__(self, url: str, exc: Exception):
        super().__init__(0, "unavailable", f"{url} did not answer: {type(exc).__name__}")


class ChannelOutOfSync(RuntimeError):
    """The node's signed state contradicts the ledger (or the ledger signed outside this client)."""


def _counters(d: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        int(d["cumulative_mu"]),
        int(d["cumulative_calls"]),
        int(d["cumulative_failures"]),
        int(d["cumulative_latency_ms"]),
    )


class NodeClient:
    def __init__(
        self,
        url: str,
        ledger: ConsumerLedger,
        *,
        timeout: float = 10.0,
        deadline_s: int = 3_600,
        session: requests.Session | None = None,
        settled: Callable[[int, str, str], tuple[int, int, int, int]] | None = None,
        on_answer: Callable[[int, dict[str, Any]], None] | None = None,
        fast: bool = True,
    ):
        self.url = url.rstrip("/")
        self.ledger = ledger
        self.timeout = timeout
        self.deadline_s = deadline_s
        self.http = session or requests.Session()
        self.settled = settled  # (credential, node, payer) -> the meter's settled counters
        # (credential, answer), called before the call is marked resolved: a crash in between
        # replays the call, so the application sees every answer at least once.
        self.on_answer = on_answer
        self.fast = fast  # skip /quote when the last answer already says what the next voucher is
        self._terms: dict[int, dict[str, Any]] = {}
        self._node: str | None = None
        self._last_latency: dict[int, int] = {}
        self.recovered: list[dict[str, Any]] = []  # answers of earlier calls recovered by `resume`

    # -- HTTP --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            r = self.http.request(method, self.url + path, timeout=self.timeout, **kw)
            data = r.json()
        except (requests.ConnectionError, requests.Timeout, ValueError) as exc:
            raise NodeUnavailable(self.url, exc) from None
        if r.status_code != 200:
            raise NodeError(r.status_code, data.get("error", "error"), data.get("message", r.text), data.get("ack"))
        return data

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def health(self) -> dict[str, Any]:
        h = self._get("/health")
        self._node = h["node"]
        return h

    @property
    def node(self) -> str:
        if self._node is None:
            self.health()
        return self._node  # type: ignore[return-value]

    def quote(
        self, credential_id: int, input_len: int | None = None, purpose: int | None = None, *, payload: Any = None
    ) -> dict[str, Any]:
        if payload is not None and not isinstance(payload, str):
            body: dict[str, Any] = {"credential_id": str(credential_id), "input": payload}
            if purpose is not None:
                body["purpose"] = str(purpose)
            return self._call("POST", "/quote", json=body)
        params: dict[str, Any] = {
            "credential": credential_id,
            "input_len": len(payload) if payload is not None else input_len,
        }
        if purpose is not None:
            params["purpose"] = purpose
        return self._get("/quote", **params)

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/invoke", json=body)

    # -- acknowledgments ---------------------------------------------------------------------

    def _check_ack(self, credential_id: int, ack: Any) -> tuple[int, int, int, int]:
        """The counters of a verified node ack; ChannelOutOfSync if it goes back on an earlier ack
        or below what the meter settled."""
        node = self.node
        try:
            got = verify_ack(self.ledger.domain, ack, node=node, credential_id=credential_id, payer=self.ledger.payer)
        except VoucherError as exc:
            raise ChannelOutOfSync(str(exc)) from None
        old = self.ledger.last_ack(credential_id, node)
        if old is not None and any(g < o for g, o in zip(got, _counters(old))):
            raise ChannelOutOfSync(
                f"node {node} acknowledges {got} on credential {credential_id} after having signed "
                f"{_counters(old)}: it lost its state (keep both acks: they are its signatures)"
            )
        if self.settled is not None:
            paid = tuple(self.settled(credential_id, node, self.ledger.payer))
            if any(g < p for g, p in zip(got, paid)):
                raise ChannelOutOfSync(f"node {node} acknowledges {got}, below the meter's settled {paid}")
        return got

    def channel(self, credential_id: int) -> dict[str, Any]:
        """`GET /channel`: the node's signed state of this consumer's channel (verified)."""
        data = self._get("/channel", credential=credential_id, payer=self.ledger.payer)
        data["acked"] = self._check_ack(credential_id, data["ack"])
        return data

    # -- calls -------------------------------------------------------------------------------

    def resume(self, credential_id: int) -> dict[str, Any] | None:
        """Resolve the channel's unresolved call, if any; returns its answer (None: nothing to do).

        Raises NodeError when the node still refuses it (e.g. `escrow_short`: deposit, then
        resume again) and NodeUnavailable when it is down: the call stays in flight, no new
        voucher is signed meanwhile."""
        node = self.node
        f = self.ledger.inflight(credential_id, node)
        if f is None:
            return None
        st = self.channel(credential_id)
        acked = st["acked"]
        if acked == f.voucher.counters():
            pass  # accepted: re-send the same voucher and input, the node re-serves without charging again
        elif acked == f.base:
            if (
                f.voucher.deadline < int(st["min_deadline"])
                or f.voucher.issued_at < int(st["chain_time"]) - int(st["settlement_window"]) // 2
            ):
                f = self._reissue(credential_id, st)
        else:
            raise ChannelOutOfSync(
                f"node {node} acknowledges {acked} on credential {credential_id}; this ledger's "
                f"unresolved call builds on {f.base} and signs {f.voucher.counters()}"
            )
        out = self._send(credential_id, f)
        self.recovered.append(out)
        return out

    def _reissue(self, credential_id: int, st: dict[str, Any] | None = None) -> InFlight:
        st = st or self.channel(credential_id)
        now = int(st["chain_time"])
        return self.ledger.reissue(
            credential_id, self.node, issued_at=now, deadline=max(int(st["min_deadline"]) + 60, now + self.deadline_s)
        )

    def _send(self, credential_id: int, f: InFlight, *, resigned: bool = False) -> dict[str, Any]:
        body = {
            "credential_id": str(credential_id),
            "input": f.input,
            "voucher": voucher_to_json(f.voucher),
            "signature": "0x" + f.signature.hex(),
        }
        t0 = time.perf_counter()
        try:
            out = self.post(body)
        except NodeError as e:
            if e.ack is not None:
                self._check_ack(credential_id, e.ack)
                self.ledger.record_ack(credential_id, self.node, e.ack)
            self._terms.pop(credential_id, None)
            if e.code in RESEND_RESIGNED and not resigned:
                return self._send(credential_id, self._reissue(credential_id), resigned=True)
            raise
        got = self._check_ack(credential_id, out["ack"])
        if got != f.voucher.counters():
            raise ChannelOutOfSync(
                f"node {self.node} served but acknowledges {got}, not the voucher's {f.voucher.counters()}"
            )
        if self.on_answer is not None:
            self.on_answer(credential_id, out)
        self.ledger.record_ack(credential_id, self.node, out["ack"], resolved=True)
        self._last_latency[credential_id] = int((time.perf_counter() - t0) * 1000)
        return out

    def _local_quote(self, credential_id: int, payload: Any, purpose: int | None) -> dict[str, Any] | None:
        """The next call's quote from the last answer, for meters whose MU the SDK computes
        exactly as the node does (saves a round trip); None: ask the node."""
        last = self._terms.get(credential_id)
        if last is None or (purpose is not None and int(last["purpose"]) != purpose):
            return None
        meter = last["meter_name"]
        if meter == "text.chars.100" and isinstance(payload, str):
            from codexfield.node.model import MAX_INPUT_CHARS, mu_for

            if len(payload) > MAX_INPUT_CHARS:
                return None
            mu = mu_for(payload)
        elif meter == "inference.call":
            mu = 1
        else:
            return None
        return dict(last, mu=mu)

    def invoke(
        self, credential_id: int, payload: Any, *, purpose: int | None = None, max_price_per_mu: int | None = None
    ) -> dict[str, Any]:
        """Resolve any earlier unresolved call, then quote, sign exactly the next voucher, invoke."""
        self.resume(credential_id)
        local = self._local_quote(credential_id, payload, purpose) if self.fast else None
        q = local or self.quote(credential_id, purpose=purpose, payload=payload)
        if not q.get("credential_ok", True):
            raise NodeError(403, "credential_refused", q.get("credential_note", ""))
        node = q["node"]
        if self._node is None:
            self._node = node
        node_price = int(q["node_price_per_mu"])
        if max_price_per_mu is not None and node_price > max_price_per_mu:
            raise NodeError(402, "too_expensive", f"node asks {node_price} per MU, above {max_price_per_mu}")
        if local is not None:  # the ack of our own last answer, verified when it arrived
            previous = _counters(q["ack"])
        else:
            previous = self._check_ack(credential_id, q["ack"]) if q.get("ack") else _counters(q["previous"])
        mine = self.ledger.counters(credential_id, node)
        if mine != previous:
            if all(m >= p for m, p in zip(mine, previous)):
                raise ChannelOutOfSync(
                    f"this ledger signed up to {mine} on credential {credential_id} but node {node} accepted "
                    f"{previous}, and the ledger holds no record of that call (signed outside NodeClient): "
                    "the node may still settle it; use NodeClient for every call to make channels recoverable"
                )
            raise ChannelOutOfSync(
                f"node {node} claims counters {previous} above this ledger's {mine}: "
                "refusing to sign; check the node and the ledger file"
            )
        latency = self._last_latency.get(credential_id, 0)
        now = int(q["chain_time"])
        f = self.ledger.begin_call(
            credential_id,
            node,
            payload,
            base=previous,
            mu=int(q["mu"]),
            latency_ms=latency,
            purpose=int(q["purpose"]),
            node_price_per_mu=node_price,
            deadline=max(int(q["min_deadline"]) + 60, now + self.deadline_s),
            issued_at=now,
        )
        out = self._send(credential_id, f)
        self._terms[credential_id] = dict(
            q, ack=out["ack"], chain_time=out["chain_time"], min_deadline=out["min_deadline"]
        )
        return out


FAILOVER_CODES = ("unavailable", "busy", "error", "underpaid", "too_expensive", "bad_request")


class GridClient:
    """Route a capsule's calls over the grid: pick a node from the index by quality, fail over.

        grid = GridClient(lambda: read_nodes(staking), ledger, region="eu")   # or the indexer's /nodes
        out = grid.invoke(credential_id, "my parcel never arrived")          # out["node"]: who served

    The order of the nodes tried is a weighted draw by `codexfield.poa.rank_nodes` (the chain's
    reliability, region, price, and this client's own latency and failure measurements), so
    traffic follows quality without starving a recovering node; a node that is down (or answers
    5xx, or refuses for a reason of its own: price, busy) is skipped for the next one. One
    channel per node: a call left unresolved on a node that failed is resolved the next time
    that node is used (`NodeClient.resume`), never re-signed elsewhere.
    """

    def __init__(
        self,
        nodes: Callable[[], list[Any]] | list[Any],
        ledger: ConsumerLedger,
        *,
        services: int = 0,
        region: str | None = None,
        max_price: int | None = None,
        timeout: float = 5.0,
        refresh_s: float = 30.0,
        seed: int | None = None,
        ewma: float = 0.3,
        settled: Callable[[int, str, str], tuple[int, int, int, int]] | None = None,
    ):
        import random

        self._nodes = nodes if callable(nodes) else (lambda: list(nodes))
        self.ledger = ledger
        self.services, self.region, self.max_price = services, region, max_price
        self.timeout, self.refresh_s, self.ewma = timeout, refresh_s, ewma
        self.settled = settled
        self.rng = random.Random(seed)
        self.clients: dict[str, NodeClient] = {}
        self.observed: dict[str, tuple[float, float]] = {}  # address -> (latency ms, failure share)
        self.calls: dict[str, int] = {}
        self._index: list[Any] = []
        self._at = -1e9

    def ranked(self) -> list[tuple[float, Any]]:
        from codexfield.poa import rank_nodes

        if time.monotonic() - self._at >= self.refresh_s:
            self._index, self._at = list(self._nodes()), time.monotonic()
        return rank_nodes(self._index, self.services, self.region, self.max_price, observed=self.observed)

    def order(self) -> list[Any]:
        """The nodes to try, a draw without replacement weighted by score (best most likely first)."""
        pool = [(max(s, 1e-9), n) for s, n in self.ranked() if n.endpoint]
        out = []
        while pool:
            total = sum(w for w, _ in pool)
            x = self.rng.uniform(0, total)
            for i, (w, _n) in enumerate(pool):
                x -= w
                if x <= 0 or i == len(pool) - 1:
                    out.append(pool.pop(i)[1])
                    break
        return out

    def _observe(self, address: str, latency_ms: float, failed: bool) -> None:
        lat, fail = self.observed.get(address.lower(), (latency_ms, 0.0))
        a = self.ewma
        self.observed[address.lower()] = ((1 - a) * lat + a * latency_ms, (1 - a) * fail + a * (1.0 if failed else 0.0))

    def client(self, node: Any) -> NodeClient:
        c = self.clients.get(node.address)
        if c is None or c.url != node.endpoint.rstrip("/"):
            c = NodeClient(node.endpoint, self.ledger, timeout=self.timeout, settled=self.settled)
            c._node = node.address
            self.clients[node.address] = c
        return c

    def invoke(self, credential_id: int, payload: Any, *, purpose: int | None = None) -> dict[str, Any]:
        """Invoke on the best node that answers; NodeError('no_node') when none does."""
        tried = []
        for node in self.order():
            t0 = time.perf_counter()
            try:
                out = self.client(node).invoke(credential_id, payload, purpose=purpose, max_price_per_mu=self.max_price)
            except NodeError as e:
                self._observe(node.address, (time.perf_counter() - t0) * 1000, True)
                tried.append(f"{node.address[:10]}: {e.code}")
                if e.code in FAILOVER_CODES or e.status >= 500 or e.status == 0:
                    continue
                raise  # the consumer's own problem (escrow, credential, signature): the same everywhere
            self._observe(node.address, (time.perf_counter() - t0) * 1000, False)
            self.calls[node.address] = self.calls.get(node.address, 0) + 1
            return out
        raise NodeError(503, "no_node", "no node of the index answered: " + ("; ".join(tried) or "the index is empty"))
