"""`codexfield index run` as a service, in a real subprocess against anvil behind a loopback
TCP proxy the test can cut: it survives an RPC outage (retries with back-off, health 503 while
degraded, then catches up), follows a reorg to a shorter chain, logs JSON lines, and exits
non-zero with one line only on a reorg deeper than its journal."""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from codexfield.indexer import models as m
from codexfield.indexer.db import make_engine

ROOT = Path(__file__).resolve().parents[2]


class Proxy:
    """A TCP forwarder 127.0.0.1:<port> -> the anvil; `cut()` refuses and drops connections."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(32)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            socks = ([self._listener] if self._listener is not None else []) + self._conns
            self._listener = None
            for c in socks:  # shutdown wakes a thread blocked in accept/recv; close alone does not
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        try:
            sel.register(a, selectors.EVENT_READ, b)
            sel.register(b, selectors.EVENT_READ, a)
            while True:
                for key, _ in sel.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return 0, {}


def _until(cond, timeout: float = 30.0, what: str = "condition"):
    end = time.time() + timeout
    while time.time() < end:
        out = cond()
        if out:
            return out
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def service(tmp_path, system, chain):
    """Start `index run` (subprocess) on a proxy in front of the session's anvil."""
    host, port = chain.provider.uri.split("//", 1)[1].split("/")[0].rsplit(":", 1)
    proxy = Proxy((host, int(port)))
    proxy.up()
    book = tmp_path / "book.json"
    book.write_text(
        json.dumps({"chain_id": chain.chain_id, "block": chain.blocks.head.number, "contracts": system.addresses})
    )
    db = tmp_path / "svc.db"
    procs = []

    def start(*extra: str):
        health = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "codexfield.cli.index",
            "run",
            "--db",
            str(db),
            "--rpc",
            f"http://127.0.0.1:{proxy.port}",
            "--book",
            str(book),
            "--confirmations",
            "0",
            "--interval",
            "0.2",
            "--max-backoff",
            "1",
            "--health-port",
            str(health),
            "--store",
            str(tmp_path / "store"),
            *extra,
        ]
        p = subprocess.Popen(
            cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append(p)
        return p, health

    yield start, proxy, db
    proxy.cut()
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def _capsules(db) -> int:
    eng = make_engine(db)
    try:
        with eng.connect() as conn:
            return conn.execute(select(func.count()).select_from(m.Capsule)).scalar_one()
    except Exception:  # noqa: BLE001 - not migrated yet
        return -1
    finally:
        eng.dispose()


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_service__rpc_outage_and_shorter_chain__retries_recovers_follows(service, system, chain, creator):
    start, proxy, db = service
    proc, hp = start()
    system.registry.mint(1, os.urandom(32), [], [], "", sender=creator)
    _until(
        lambda: _health(hp)[0] == 200 and _health(hp)[1]["checkpoint"] == chain.blocks.head.number,
        what="first catch-up",
    )
    assert _capsules(db) == 1
    proxy.cut()  # a 3-second RPC outage
    system.registry.mint(2, os.urandom(32), [], [], "", sender=creator)
    degraded = _until(lambda: (lambda h: h[1] if h[0] == 503 else None)(_health(hp)), what="degraded health")
    assert degraded["status"] == "degraded" and degraded["consecutive_failures"] >= 1 and degraded["last_error"]
    time.sleep(3)
    assert proc.poll() is None  # still running
    proxy.up()
    _until(lambda: _health(hp)[0] == 200 and _capsules(db) == 2, what="recovery")
    snap = chain.snapshot()
    system.registry.mint(3, os.urandom(32), [], [], "", sender=creator)
    chain.mine(3)
    _until(
        lambda: _capsules(db) == 3 and _health(hp)[1].get("checkpoint") == chain.blocks.head.number,
        what="the branch to be dropped",
    )
    chain.restore(snap)  # reorg to a shorter chain with no new event
    _until(
        lambda: (
            _capsules(db) == 2 and _health(hp)[0] == 200 and _health(hp)[1]["checkpoint"] <= chain.blocks.head.number
        ),
        what="rollback to the shorter chain",
    )
    system.registry.mint(4, os.urandom(32), [], [], "", sender=creator)
    _until(lambda: _capsules(db) == 3, what="following the new branch")
    assert proc.poll() is None
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    logs = _json_lines(err)
    events = [e.get("event") for e in logs]
    assert "retry" in events and "cycle" in events and all({"ts", "level", "logger"} <= e.keys() for e in logs)
    retries = [e for e in logs if e.get("event") == "retry"]
    assert all(e["delay_s"] <= 1.0 for e in retries) and retries[0]["attempt"] == 1
    assert any(e.get("event") == "cycle" and e.get("reorgs") for e in logs)


def test_service__reorg_deeper_than_journal__exits_with_one_line(service, system, chain, creator):
    start, proxy, db = service
    snap = chain.snapshot()
    system.registry.mint(1, os.urandom(32), [], [], "", sender=creator)
    chain.mine(5)
    proc, hp = start("--journal-depth", "1", "--batch", "1")
    _until(lambda: _health(hp)[1].get("checkpoint") == chain.blocks.head.number, what="catch-up")
    chain.restore(snap)
    chain.mine(8)  # every stored block replaced, the journal (1 block) cannot undo it
    proc.wait(timeout=30)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode != 0
    tail = [line for line in err.splitlines() if not line.startswith("{")]
    assert len(tail) == 1 and tail[0].startswith("Error: unrecoverable:") and "re-index" in tail[0], err[-2000:]
    assert "Traceback" not in err
    assert any(e.get("event") == "fatal" for e in _json_lines(err))
