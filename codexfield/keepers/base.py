"""What every keeper shares: a durable state file, intent-logged transactions, retries, logs.

Crash safety without double work rests on three rules:

1. Every transaction has an *intent id* that names the work (`finalize:12:0`,
   `settle:USDC:3:1`). Before anything is sent the intent is written to the keeper's SQLite
   file; the transaction is then signed and its hash and raw bytes are written *before* it is
   broadcast. A finished intent (`done` or `failed`: mined, or reverted) is never sent again.
2. On restart, `TxSender.reconcile()` looks at every unfinished intent: written but never
   signed → `dropped` (nothing can be on chain under it); signed but unknown to the chain →
   the very same raw transaction is re-broadcast (same nonce, so it can never land twice);
   mined → recorded; its nonce taken by another transaction → `dropped`. A dropped intent is
   *not* finished: the next `send` under that id signs it afresh (the keeper plans that work
   again from the chain's state), because nothing under it can ever land.
3. Positions (last scanned block, reported epochs) advance in the same SQLite transaction as
   the work they cover.

Transient RPC failures (connection errors, timeouts) are retried with exponential back-off;
contract reverts are not transient and surface at once. Logs are one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from codexfield.sqlite import wal

T = TypeVar("T")

logger = logging.getLogger("codexfield.keepers")


# --------------------------------------------------------------------------------- logging


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        else:
            data["event"] = record.getMessage()
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(data, default=str, sort_keys=False)


def setup_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Structured logs on stderr (idempotent)."""
    root = logging.getLogger("codexfield")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def log_event(who: str, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` of keeper `who` with structured `fields`."""
    logging.getLogger(f"codexfield.{who}").log(
        level, event, extra={"fields": {"keeper": who, "event": event, **fields}}
    )


# --------------------------------------------------------------------------------- retries


def is_transient(exc: BaseException) -> bool:
    """Connection problems and timeouts are worth retrying; reverts and bad input are not."""
    import requests

    try:
        from ape.exceptions import ContractLogicError, ProviderNotConnectedError, TransactionError
    except Exception:  # pragma: no cover
        ContractLogicError = TransactionError = ProviderNotConnectedError = ()  # type: ignore

    if isinstance(exc, ContractLogicError):
        return False
    if isinstance(
        exc, (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout, ProviderNotConnectedError)
    ):
        return True
    if isinstance(exc, TransactionError):
        return False
    text = str(exc).lower()
    return any(
        s in text
        for s in (
            "connection refused",
            "connection reset",
            "timed out",
            "temporarily unavailable",
            "too many requests",
            "429",
            "502",
            "503",
            "504",
        )
    )


def retry(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    who: str = "keeper",
    what: str = "rpc",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn`, retrying transient failures with exponential back-off and jitter."""
    for i in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if i == attempts - 1 or not is_transient(exc):
                raise
            delay = min(max_delay, base_delay * 2**i) * (0.5 + random.random() / 2)
            log_event(
                who,
                "retry",
                logging.WARNING,
                what=what,
                attempt=i + 1,
                delay_s=round(delay, 3),
                error=str(exc).splitlines()[0][:200],
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------- state


@dataclass
class Intent:
    id: str
    action: str
    payload: dict[str, Any]
    status: str  # intent | signed | done | failed | dropped
    tx_hash: str | None
    nonce: int | None
    raw: bytes | None


class KeeperState:
    """A small SQLite file: key/value positions and the intent log."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS intents (id TEXT PRIMARY KEY, action TEXT NOT NULL, payload TEXT NOT NULL,"
                " status TEXT NOT NULL, tx_hash TEXT, nonce INTEGER, raw BLOB, created REAL, updated REAL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        wal(db, synchronous="FULL")
        return db

    def _tx(self):
        state = self

        class _Ctx:
            def __enter__(self_inner) -> sqlite3.Connection:
                state._lock.acquire()
                self_inner.db = state._connect()
                self_inner.db.execute("BEGIN IMMEDIATE")
                return self_inner.db

            def __exit__(self_inner, et, ev, tb) -> None:
                try:
                    self_inner.db.execute("ROLLBACK" if et else "COMMIT")
                finally:
                    self_inner.db.close()
                    state._lock.release()

        return _Ctx()

    # -- key/value ---------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock, closing(self._connect()) as db:
            row = db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: dict[str, Any], delete: tuple[str, ...] = ()) -> None:
        """Write several keys (and delete others) atomically."""
        with self._tx() as db:
            for k, v in values.items():
                db.execute(
                    "INSERT INTO kv VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (k, json.dumps(v)),
                )
            for k in delete:
                db.execute("DELETE FROM kv WHERE key=?", (k,))

    def transact(self, fn: Callable[[StateTx], T]) -> T:
        """Run `fn` on a `StateTx` inside one SQLite write transaction (atomic read-modify-write:
        a concurrent `transact` waits; a crash leaves all of it or none)."""
        with self._tx() as db:
            return fn(StateTx(db))

    def keys(self, prefix: str) -> list[str]:
        with self._lock, closing(self._connect()) as db:
            return [r[0] for r in db.execute("SELECT key FROM kv WHERE key LIKE ? ORDER BY key", (prefix + "%",))]

    # -- intents -----------------------------------------------------------------------------

    def intent(self, intent_id: str) -> Intent | None:
        with self._lock, closing(self._connect()) as db:
            row = db.execute(
                "SELECT id, action, payload, status, tx_hash, nonce, raw FROM intents WHERE id=?", (intent_id,)
            ).fetchone()
        return _intent(row) if row else None

    def intents(self, statuses: tuple[str, ...] | None = None) -> list[Intent]:
        with self._lock, closing(self._connect()) as db:
            rows = db.execute("SELECT id, action, payload, status, tx_hash, nonce, raw FROM intents ORDER BY created")
            out = [_intent(r) for r in rows]
        return [i for i in out if statuses is None or i.status in statuses]

    def record_intent(self, intent_id: str, action: str, payload: dict[str, Any]) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO intents (id, action, payload, status, created, updated) VALUES (?, ?, ?, 'intent', ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET status='intent', tx_hash=NULL, nonce=NULL, raw=NULL, updated=excluded.updated",
                (intent_id, action, json.dumps(payload, default=str), now, now),
            )

    def mark(
        self,
        intent_id: str,
        status: str,
        *,
        tx_hash: str | None = None,
        nonce: int | None = None,
        raw: bytes | None = None,
        also: dict[str, Any] | None = None,
    ) -> None:
        """Set an intent's status (and, atomically, some kv positions in `also`)."""
        with self._tx() as db:
            sets, args = ["status=?", "updated=?"], [status, time.time()]
            if tx_hash is not None:
                sets.append("tx_hash=?")
                args.append(tx_hash)
            if nonce is not None:
                sets.append("nonce=?")
                args.append(nonce)
            if raw is not None:
                sets.append("raw=?")
                args.append(raw)
            db.execute(f"UPDATE intents SET {', '.join(sets)} WHERE id=?", (*args, intent_id))
            for k, v in (also or {}).items():
                db.execute(
                    "INSERT INTO kv VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (k, json.dumps(v)),
                )


class StateTx:
    """The kv view of one open `KeeperState.transact` transaction."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT INTO kv VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, json.dumps(value))
        )


def _intent(row) -> Intent:
    return Intent(
        id=row[0],
        action=row[1],
        payload=json.loads(row[2]),
        status=row[3],
        tx_hash=row[4],
        nonce=row[5],
        raw=bytes(row[6]) if row[6] is not None else None,
    )


# --------------------------------------------------------------------------------- sending


class Crash(BaseException):
    """Raised by a test hook to simulate a process dying at a given point (not an Exception,
    so nothing in the keeper catches it)."""


class TxSender:
    """Sends contract calls under intent ids: never twice, resumable after a crash.

    `hooks` maps a crash point to a callable; tests use it to kill the keeper at exactly that
    point. The points, in order: "after_intent" (intent written, nothing signed),
    "after_sign" (signed and saved, not broadcast), "after_broadcast" (broadcast, receipt not
    awaited), "after_send" (mined, receipt not recorded), "after_done" (receipt recorded, the
    keeper's own follow-up not yet done).
    """

    FINAL = ("done", "failed")  # a `dropped` intent is sent again (nothing under it can land)
    POINTS = ("after_intent", "after_sign", "after_broadcast", "after_send", "after_done")

    def __init__(
        self, account: Any, state: KeeperState, who: str, *, hooks: dict[str, Callable[[str], None]] | None = None
    ):
        self.account = account
        self.state = state
        self.who = who
        self.hooks = hooks or {}
        self._lock = threading.Lock()

    def _hook(self, point: str, intent_id: str) -> None:
        fn = self.hooks.get(point)
        if fn is not None:
            fn(intent_id)

    def done(self, intent_id: str) -> bool:
        i = self.state.intent(intent_id)
        return i is not None and i.status in self.FINAL

    def send(
        self,
        intent_id: str,
        method: Any,
        *args: Any,
        action: str = "",
        payload: dict[str, Any] | None = None,
        also: dict[str, Any] | None = None,
    ) -> Any:
        """Send `method(*args)` from the account unless `intent_id` already finished.

        Returns the receipt, or None when the intent was already final (done or failed); an
        intent left unsigned or dropped by a crash is signed afresh. `also` are kv
        positions written in the same SQLite transaction that marks the intent done.
        """
        from ape import chain

        from codexfield.deployments import gas_headroom

        gas_headroom()  # whichever way the keeper connected: an estimate is not a limit
        with self._lock:
            existing = self.state.intent(intent_id)
            if existing is not None and existing.status in self.FINAL:
                return None
            if existing is not None and existing.status == "signed":
                receipt = self._reconcile_one(existing, also=also)
                if receipt is not None:
                    return receipt
                # dropped (its nonce went to another transaction): sign the work afresh below
            self.state.record_intent(intent_id, action or getattr(method, "name", "call"), payload or {})
            self._hook("after_intent", intent_id)
            try:
                txn = retry(
                    lambda: method.as_transaction(*args, sender=self.account, sign=True),
                    who=self.who,
                    what=f"prepare {intent_id}",
                )
            except Exception as exc:  # nothing was signed: the call would revert (or the RPC is down)
                self.state.mark(intent_id, "failed" if not is_transient(exc) else "dropped")
                log_event(
                    self.who, "tx_not_sent", logging.ERROR, intent=intent_id, error=str(exc).splitlines()[0][:200]
                )
                raise
            tx_hash = _hex(txn.txn_hash)
            self.state.mark(
                intent_id, "signed", tx_hash=tx_hash, nonce=int(txn.nonce), raw=bytes(txn.serialize_transaction())
            )
            self._hook("after_sign", intent_id)
            log_event(self.who, "tx_sent", intent=intent_id, tx=tx_hash, nonce=int(txn.nonce))
            try:
                retry(lambda: _broadcast(txn), who=self.who, what=f"send {intent_id}")
            except Exception as exc:
                if is_transient(exc):
                    raise  # left 'signed': the next reconcile re-broadcasts the same bytes
                self.state.mark(intent_id, "failed", also=None)
                log_event(
                    self.who,
                    "tx_failed",
                    logging.ERROR,
                    intent=intent_id,
                    tx=tx_hash,
                    error=str(exc).splitlines()[0][:200],
                )
                raise
            self._hook("after_broadcast", intent_id)
            receipt = retry(lambda: chain.provider.get_receipt(tx_hash), who=self.who, what=f"receipt {intent_id}")
            self._hook("after_send", intent_id)
            out = self._finish(intent_id, receipt, also)
            self._hook("after_done", intent_id)
            if getattr(out, "failed", False):
                out.raise_for_status()  # reverted on chain: recorded as failed, surfaced like a revert
            return out

    def _finish(self, intent_id: str, receipt: Any, also: dict[str, Any] | None) -> Any:
        ok = not getattr(receipt, "failed", False)
        self.state.mark(intent_id, "done" if ok else "failed", also=also if ok else None)
        log_event(
            self.who,
            "tx_mined" if ok else "tx_reverted",
            intent=intent_id,
            tx=_hex(receipt.txn_hash),
            block=receipt.block_number,
            gas=receipt.gas_used,
        )
        return receipt

    def reconcile(self) -> list[Intent]:
        """Settle every unfinished intent against the chain (call at start-up)."""
        out = []
        for i in self.state.intents(("intent", "signed")):
            if i.status == "intent":
                # Crashed before signing: nothing can be on chain under this intent.
                self.state.mark(i.id, "dropped")
                log_event(self.who, "intent_dropped", intent=i.id, reason="never signed")
            else:
                self._reconcile_one(i)
            out.append(self.state.intent(i.id))
        return out

    def _reconcile_one(self, i: Intent, also: dict[str, Any] | None = None) -> Any:
        from ape import chain

        receipt = _receipt(i.tx_hash)
        if receipt is None:
            nonce = retry(lambda: chain.provider.get_nonce(self.account.address), who=self.who, what="nonce")
            if i.nonce is not None and nonce > i.nonce:
                receipt = _receipt(i.tx_hash)  # mined meanwhile?
                if receipt is None:
                    self.state.mark(i.id, "dropped")
                    log_event(self.who, "intent_dropped", intent=i.id, reason="nonce used by another transaction")
                    return None
            else:
                log_event(self.who, "tx_rebroadcast", intent=i.id, tx=i.tx_hash, nonce=i.nonce)
                web3 = chain.provider.web3
                try:
                    web3.eth.send_raw_transaction(i.raw)
                except Exception as exc:  # already known / nonce too low: look again below
                    log_event(self.who, "rebroadcast_note", intent=i.id, note=str(exc).splitlines()[0][:200])
                receipt = retry(lambda: chain.provider.get_receipt(i.tx_hash), who=self.who, what="receipt")
        return self._finish(i.id, receipt, also)


def _broadcast(txn: Any) -> None:
    """Broadcast a signed transaction; "already known" (a retry after a lost answer) is fine."""
    from ape import chain

    try:
        chain.provider.web3.eth.send_raw_transaction(bytes(txn.serialize_transaction()))
    except Exception as exc:
        if "already known" not in str(exc).lower():
            raise


def _receipt(tx_hash: str | None) -> Any:
    from ape import chain

    if not tx_hash:
        return None
    try:
        web3 = chain.provider.web3
        raw = web3.eth.get_transaction_receipt(tx_hash)
    except Exception:
        return None
    if raw is None:
        return None
    return chain.provider.get_receipt(tx_hash)


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


# --------------------------------------------------------------------------------- loop


def run_loop(
    step: Callable[[], Any],
    *,
    interval: float,
    who: str,
    stop: threading.Event | None = None,
    max_iterations: int | None = None,
) -> None:
    """Call `step()` every `interval` seconds until `stop` is set; errors are logged and the
    loop goes on (a transient failure must not kill a keeper)."""
    stop = stop or threading.Event()
    n = 0
    while not stop.is_set():
        try:
            step()
        except Crash:
            raise
        except Exception as exc:  # logged, then the next round retries from durable state
            log_event(who, "step_failed", logging.ERROR, error=str(exc).splitlines()[0][:300], kind=type(exc).__name__)
        n += 1
        if max_iterations is not None and n >= max_iterations:
            return
        stop.wait(interval)


def chunks(seq: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
