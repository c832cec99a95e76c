"""`codexfield index run` as a long-running service: back-off, health, structured logs.

`Follower.run()` repeats `run_cycle` (catch up with the chain, fetch due manifests,
refresh rankings) every `interval` seconds. Any failure of a cycle — the RPC down or timing
out, `BlockNotFound` while the chain is reorganising, the database restarting, a ranking
refresh losing a race — is logged and retried after an exponential back-off with jitter
(`base_delay * 2**n`, at most `max_delay`); the catalog is left exactly at its last committed
checkpoint, so a retry resumes with no gap and no duplicate. The only unrecoverable error is
`DeepReorg` (the chain reorganised below the oldest block the journal can undo): `run`
raises it and the command exits non-zero with one line saying what to do.

Health: `HealthServer` answers `GET /health` on its own port (loopback by default) with the
follower's state as JSON — `status` "starting" | "ok" | "degraded" | "failed", chain id,
checkpoint, head, lag, consecutive failures, the last error, the time of the last good cycle
— and HTTP 200 while the status is "ok", 503 otherwise.

Logs are one JSON object per line on stderr (`codexfield.keepers.base.JsonFormatter`): each
has `ts`, `level`, `logger`, `event` and the event's fields (`cycle`, `retry`, `reorg`,
`fatal`).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from codexfield.indexer.ingest import DeepReorg

log = logging.getLogger("codexfield.indexer")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, event, extra={"fields": {"event": event, **fields}})


@dataclass
class Health:
    status: str = "starting"
    chain_id: int | None = None
    checkpoint: int | None = None
    head: int | None = None
    lag: int | None = None
    cycles: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_ok_at: float | None = None
    updated_at: float = 0.0


class Follower:
    """Runs `cycle()` forever with back-off on failure; `health` is its live state."""

    def __init__(
        self,
        cycle: Callable[[], dict],
        *,
        chain_id: int,
        interval: float = 5.0,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        once: bool = False,
        max_failures: int | None = None,
        stop: threading.Event | None = None,
        sleep: Callable[[float], Any] | None = None,
    ):
        self.cycle = cycle
        self.max_failures = max_failures  # None: retry for ever (the service); else give up, raising
        self.last: dict | None = None
        self.interval = interval
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.once = once
        self.stop = stop or threading.Event()
        self._sleep = sleep or self.stop.wait
        self.health = Health(chain_id=chain_id, updated_at=time.time())
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self.health)

    def backoff(self, failures: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** max(0, failures - 1)) * (0.5 + random.random() / 2)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                r = self.cycle()
            except DeepReorg as exc:
                with self._lock:
                    self.health.status, self.health.last_error, self.health.updated_at = "failed", str(exc), time.time()
                log_event("fatal", logging.ERROR, chain_id=self.health.chain_id, error=str(exc), kind="DeepReorg")
                raise
            except Exception as exc:  # noqa: BLE001 - every other failure is retried
                with self._lock:
                    h = self.health
                    h.consecutive_failures += 1
                    h.status, h.updated_at = "degraded", time.time()
                    h.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                    delay = self.backoff(h.consecutive_failures)
                    attempt, error = h.consecutive_failures, h.last_error
                if self.max_failures is not None and attempt >= self.max_failures:
                    log_event("gave_up", logging.ERROR, chain_id=self.health.chain_id, attempts=attempt, error=error)
                    raise
                log_event(
                    "retry",
                    logging.WARNING,
                    chain_id=self.health.chain_id,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    error=error,
                )
                self._sleep(delay)
                continue
            with self._lock:
                h = self.health
                h.cycles += 1
                h.status, h.consecutive_failures, h.last_error = "ok", 0, None
                h.checkpoint, h.head = r.get("checkpoint"), r.get("head")
                h.lag = None if h.head is None or h.checkpoint is None else max(0, h.head - h.checkpoint)
                h.last_ok_at = h.updated_at = time.time()
            self.last = r
            log_event("cycle", chain_id=self.health.chain_id, **r)
            if self.once:
                return
            self._sleep(self.interval)


class HealthServer:
    """`GET /health` (and `/`) with the follower's state; 200 when ok, else 503."""

    def __init__(self, follower: Follower, host: str = "127.0.0.1", port: int = 0):
        outer = follower

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.split("?")[0] not in ("/health", "/"):
                    body, code = {"error": f"no route {self.path}; GET /health"}, 404
                else:
                    body = outer.snapshot()
                    code = 200 if body["status"] == "ok" else 503
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet: the follower logs what matters
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="index-health", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_cycle(indexer, worker, engine, max_steps: int | None = None, tokens=None) -> dict:
    """One pass: catch up with the chain, fetch due manifests, learn new payment tokens'
    symbol and decimals (`codexfield.indexer.tokens`), refresh rankings."""
    from codexfield.indexer import ranking
    from codexfield.indexer.tokens import TokenWorker

    reorgs = indexer.reorgs_seen
    applied = indexer.sync(max_steps=max_steps)
    fetched = worker.process()
    if tokens is None and hasattr(indexer.source, "w3"):
        tokens = TokenWorker(engine, indexer.source, indexer.chain_id)
    if tokens is not None:
        tokens.process()
    reorged = indexer.reorgs_seen != reorgs  # a reorg that only removed events changes rankings too
    if applied or fetched or reorged:
        ranking.refresh(engine)
    checkpoint, head = indexer.progress()
    return {
        "applied": applied,
        "manifests": fetched,
        "checkpoint": checkpoint,
        "head": head,
        "reorgs": indexer.reorgs_seen - reorgs,
    }
