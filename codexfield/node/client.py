"""Consumer side of the node protocol: quote, sign the next cumulative voucher, invoke.

    ledger = ConsumerLedger("~/.codexfield/ledger.sqlite", Domain.of(meter), hot_key)
    client = NodeClient("http://127.0.0.1:8545", ledger)
    out = client.invoke(credential_id, "my parcel never arrived")     # {"result": {...}, "mu": 1, ...}

The ledger advances and commits the channel's counters *before* the voucher leaves the
process, so nothing it signed is ever undercut. If the ledger is ahead of the node (a call
whose response was lost), `invoke` raises `ChannelOutOfSync` instead of signing a voucher the
node cannot accept.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from codexfield.node.gateway import voucher_json
from codexfield.sdk.metering import ConsumerLedger


class NodeError(RuntimeError):
    """The node refused the call (`status`, `code` and its message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"node refused ({status} {code}): {message}")
        self.status, self.code, self.message = status, code, message


class ChannelOutOfSync(RuntimeError):
    """The consumer's ledger signed more than the node accepted (a lost response)."""


def _counters(d: dict[str, Any]) -> tuple[int, int, int, int]:
    return (int(d["cumulative_mu"]), int(d["cumulative_calls"]), int(d["cumulative_failures"]),
            int(d["cumulative_latency_ms"]))


class NodeClient:
    def __init__(self, url: str, ledger: ConsumerLedger, *, timeout: float = 10.0, deadline_s: int = 3_600,
                 session: requests.Session | None = None):
        self.url = url.rstrip("/")
        self.ledger = ledger
        self.timeout = timeout
        self.deadline_s = deadline_s
        self.http = session or requests.Session()
        self._last_latency: dict[int, int] = {}

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        r = self.http.get(self.url + path, params=params, timeout=self.timeout)
        data = r.json()
        if r.status_code != 200:
            raise NodeError(r.status_code, data.get("error", "error"), data.get("message", r.text))
        return data

    def health(self) -> dict[str, Any]:
        return self._get("/health")

    def quote(self, credential_id: int, input_len: int, purpose: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"credential": credential_id, "input_len": input_len}
        if purpose is not None:
            params["purpose"] = purpose
        return self._get("/quote", **params)

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(self.url + "/invoke", json=body, timeout=self.timeout)
        data = r.json()
        if r.status_code != 200:
            raise NodeError(r.status_code, data.get("error", "error"), data.get("message", r.text))
        return data

    def invoke(self, credential_id: int, text: str, *, purpose: int | None = None,
               max_price_per_mu: int | None = None) -> dict[str, Any]:
        """Quote, sign exactly the next voucher, invoke; returns the node's answer."""
        q = self.quote(credential_id, len(text), purpose)
        if not q.get("credential_ok", True):
            raise NodeError(403, "credential_refused", q.get("credential_note", ""))
        node = q["node"]
        node_price = int(q["node_price_per_mu"])
        if max_price_per_mu is not None and node_price > max_price_per_mu:
            raise NodeError(402, "too_expensive", f"node asks {node_price} per MU, above {max_price_per_mu}")
        previous = _counters(q["previous"])
        mine = self.ledger.counters(credential_id, node)
        if mine != previous:
            if all(m >= p for m, p in zip(mine, previous)):
                raise ChannelOutOfSync(
                    f"this ledger signed up to {mine} on credential {credential_id} but node {node} accepted "
                    f"{previous}: a response was lost. The node may still settle the signed voucher; open a new "
                    "credential or channel to continue.")
            raise ChannelOutOfSync(f"node {node} claims counters {previous} above this ledger's {mine}: "
                                   "refusing to sign; check the node and the ledger file")
        latency = self._last_latency.get(credential_id, 0)
        voucher, sig = self.ledger.next_voucher(
            credential_id, node, mu=int(q["mu"]), calls=1, latency_ms=latency, purpose=int(q["purpose"]),
            node_price_per_mu=node_price, deadline=max(int(q["min_deadline"]) + 60, int(q["chain_time"]) + self.deadline_s),
            issued_at=int(q["chain_time"]),
        )
        body = {"credential_id": str(credential_id), "input": text, "voucher": voucher_json(voucher),
                "signature": "0x" + sig.hex()}
        t0 = time.perf_counter()
        out = self.post(body)
        self._last_latency[credential_id] = int((time.perf_counter() - t0) * 1000)
        return out
