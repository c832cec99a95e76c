"""Index a freshly run demo and serve its catalog: used by `codexfield.demo` (`make demo`)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def index_and_serve(book: Any, work: Path) -> tuple[str, dict]:
    """Index every event of the connected chain into `work/catalog.db`, fetch manifests from the
    demo's store, refresh rankings, and serve the API on 127.0.0.1 in a daemon thread.
    Returns the API URL and a short summary read back over HTTP (so the catalog is proven live)."""
    import uvicorn
    from ape import networks

    from codexfield.indexer.api import create_app
    from codexfield.indexer.db import make_engine, migrate
    from codexfield.indexer.ingest import Web3Source, indexer_for_book
    from codexfield.indexer.manifests import ManifestWorker
    from codexfield.indexer.service import run_cycle
    from codexfield.store import open_store

    engine = make_engine(str(work / "catalog.db"))
    migrate(engine)
    idx = indexer_for_book(engine, Web3Source(networks.provider.web3), book, confirmations=0)
    worker = ManifestWorker(engine, store=open_store(str(work / "store")))
    cycle = run_cycle(idx, worker, engine)

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True, name="catalog-api").start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    with urllib.request.urlopen(f"{url}/api/capsules?limit=10", timeout=10) as r:
        found = json.loads(r.read())
    with urllib.request.urlopen(f"{url}/api/status", timeout=10) as r:
        status = json.loads(r.read())
    return url, {"events": cycle["applied"], "search": found, "status": status}


def demo_hook(book: Any, work: Path) -> str:
    """The demo's indexer step: returns the API URL (the server lives until the demo exits)."""
    url, summary = index_and_serve(book, work)
    hits = summary["search"]
    items = hits.get("items", hits) if isinstance(hits, dict) else hits
    print(
        f"indexer: {summary['events']} events indexed; catalog search returns {len(items)} capsule(s); "
        f"API {url}/api/capsules, docs {url}/docs, page {url}/"
    )
    return url
