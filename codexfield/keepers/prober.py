"""Prober: probe every registered node's `GET /health`, report each finished epoch.

`probe_endpoints(...)` is plain asyncio + aiohttp with a semaphore (bounded concurrency) and
a per-request timeout; a probe succeeds when the node answers 200 with JSON whose `node` is
the registered address (a node cannot borrow another node's endpoint) and `status` "ok".

`Prober.run_once()`:
- probes all nodes and adds the samples to the current epoch's tally in the state file
  (probes, successes, summed latency of successful probes, per node);
- for every earlier epoch with samples that is still inside its report window
  (`epoch end + report_window`) and not yet reported, submits `submit_reports(epoch, ...)`
  under intent `report:<epoch>` — one transaction per epoch and reporter, never two.

The reporter account must sit in the epoch's reporter committee (`is_reporter(account,
epoch)`; the admin's `add_reporter` seats it from the next epoch); an epoch it does not sit in
is skipped (logged `report_skipped`). An epoch counts for a node only with reports from a
strict majority of that epoch's committee (and at least `quorum`, default 3), so run one
prober per committee member.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codexfield.keepers.base import KeeperState, TxSender, log_event, retry

MISS_LATENCY_MS = 2_000  # latency reported for a node that answered no probe


@dataclass
class ProbeResult:
    probes: int
    successes: int
    latency_ms_sum: int

    @property
    def mean_latency_ms(self) -> int:
        return self.latency_ms_sum // self.successes if self.successes else MISS_LATENCY_MS


async def _probe_one(session: Any, sem: asyncio.Semaphore, node: str, url: str, timeout: float) -> tuple[bool, int]:
    import aiohttp

    async with sem:
        t0 = time.perf_counter()
        try:
            async with session.get(url.rstrip("/") + "/health", timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                if r.status != 200:
                    return False, 0
                data = await r.json(content_type=None)
            ok = str(data.get("node", "")).lower() == node.lower() and data.get("status") == "ok"
            return ok, int((time.perf_counter() - t0) * 1000)
        except Exception:
            return False, 0


async def probe_endpoints_async(
    endpoints: Mapping[str, str], *, probes: int = 3, concurrency: int = 16, timeout: float = 2.0
) -> dict[str, ProbeResult]:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:
        jobs = [
            (node, _probe_one(session, sem, node, url, timeout))
            for node, url in endpoints.items()
            for _ in range(probes)
        ]
        results = await asyncio.gather(*(j for _, j in jobs))
    out: dict[str, ProbeResult] = {n: ProbeResult(0, 0, 0) for n in endpoints}
    for (node, _), (ok, ms) in zip(jobs, results):
        r = out[node]
        r.probes += 1
        if ok:
            r.successes += 1
            r.latency_ms_sum += ms
    return out


def probe_endpoints(endpoints: Mapping[str, str], **kw: Any) -> dict[str, ProbeResult]:
    """Synchronous wrapper (runs its own event loop)."""
    return asyncio.run(probe_endpoints_async(endpoints, **kw))


def registered_nodes(staking: Any) -> dict[str, str]:
    """address -> endpoint of every registered, non-ejected node."""
    n = int(staking.node_count())
    out = {}
    for i in range(n):
        addr = str(staking.node_at(i))
        out[addr] = str(staking.endpoint(addr))
    return out


class Prober:
    who = "prober"

    def __init__(
        self,
        staking: Any,
        account: Any,
        state: KeeperState,
        *,
        probes: int = 3,
        concurrency: int = 16,
        timeout: float = 2.0,
        hooks: dict | None = None,
    ):
        self.staking = staking
        self.account = account
        self.state = state
        self.probes = probes
        self.concurrency = concurrency
        self.timeout = timeout
        self.sender = TxSender(account, state, self.who, hooks=hooks)
        self.genesis = int(staking.genesis())
        self.epoch_length = int(staking.epoch_length())
        self.report_window = int(staking.params().report_window)
        self.sender.reconcile()

    def _now(self) -> int:
        from ape import chain

        return int(retry(lambda: chain.blocks.head.timestamp, who=self.who, what="head"))

    def epoch_at(self, ts: int) -> int:
        return (ts - self.genesis) // self.epoch_length

    def probe(self) -> dict[str, ProbeResult]:
        """Probe every node once (`probes` requests each) and add to the current epoch's tally."""
        me = self.account.address.lower()
        nodes = {
            a: u
            for a, u in retry(lambda: registered_nodes(self.staking), who=self.who, what="nodes").items()
            if a.lower() != me
        }
        if not nodes:
            return {}
        epoch = self.epoch_at(self._now())
        results = probe_endpoints(nodes, probes=self.probes, concurrency=self.concurrency, timeout=self.timeout)
        key = f"samples:{epoch:012d}"

        def add(tx) -> None:  # one read-modify-write transaction: a concurrent or killed round loses nothing
            tally = tx.get(key, {})
            for node, r in results.items():
                p, s, lat = tally.get(node, [0, 0, 0])
                tally[node] = [p + r.probes, s + r.successes, lat + r.latency_ms_sum]
            tx.set(key, tally)

        self.state.transact(add)
        log_event(
            self.who, "probed", epoch=epoch, nodes=len(results), up=sum(1 for r in results.values() if r.successes)
        )
        return results

    def report(self) -> list[int]:
        """Submit the reports of every finished epoch still inside its report window."""
        now = self._now()
        current = self.epoch_at(now)
        sent = []
        for key in self.state.keys("samples:"):
            epoch = int(key.split(":")[1])
            if epoch >= current:
                continue
            intent = f"report:{epoch}"
            closes = self.genesis + (epoch + 1) * self.epoch_length + self.report_window
            if self.sender.done(intent):
                continue
            if now >= closes:
                log_event(self.who, "report_missed", epoch=epoch, reason="report window closed")
                self.state.update({f"missed:{epoch}": True}, delete=(key,))
                continue
            member = retry(
                lambda e=epoch: self.staking.is_reporter(self.account.address, e), who=self.who, what="committee"
            )
            if not member:
                log_event(self.who, "report_skipped", epoch=epoch, reason="not in the epoch's committee")
                self.state.update({f"missed:{epoch}": True}, delete=(key,))
                continue
            tally = self.state.get(key, {})
            reports = []
            for node, (p, s, lat) in sorted(tally.items()):
                if p <= 0:
                    continue
                mean = lat // s if s else MISS_LATENCY_MS
                reports.append((node, min(p, 2**32 - 1), min(s, 2**32 - 1), min(mean, 2**32 - 1)))
            if not reports:
                continue
            receipt = self.sender.send(
                intent,
                self.staking.submit_reports,
                epoch,
                reports,
                action="submit_reports",
                payload={"epoch": epoch, "reports": reports},
            )
            if receipt is not None:
                sent.append(epoch)
                log_event(self.who, "reported", epoch=epoch, nodes=len(reports))
        return sent

    def run_once(self) -> list[int]:
        self.probe()
        return self.report()
