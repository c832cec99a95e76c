"""Manifests: fetched by CID through the configured store, verified, full-text indexed; every
failure (malformed, missing, unreachable storage, bad CID, tampered bytes) lands in the retry
queue with exponential back-off and shows in status."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from codexfield.cid import cid_of
from codexfield.indexer import models as m
from codexfield.indexer import queries, ranking
from codexfield.indexer.manifests import ManifestWorker
from codexfield.manifest import canonical
from codexfield.store import IpfsHttpStore, LocalStore

from synth import Feed, capsule_id, minted


def manifest(name: str, description: str, task: str = "text-classification") -> dict:
    return {
        "schema_version": 1,
        "name": name,
        "kind": "model",
        "description": description,
        "version": "1.0.0",
        "files": [{"path": "weights.bin", "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}],
        "model_card": {"task": task},
    }


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def _row(engine, cid):
    with engine.connect() as conn:
        return conn.execute(select(m.Manifest.__table__).where(m.Manifest.cid == cid)).mappings().one()


def test_valid_manifest__fetched_verified_and_searchable(engine, store):
    data = canonical(manifest("Sentiment tagger", "Classifies product reviews into moods"))
    cid = store.put(data)
    f = Feed(engine)
    f.block_of([minted(1, content_hash=hashlib.sha256(data).digest()), minted(2)])
    assert ManifestWorker(engine, store=store).process(now=1000.0) == {"ok": 1, "not_found": 1}
    row = _row(engine, cid)
    assert row["status"] == "ok" and row["name"] == "Sentiment tagger" and "text-classification" in row["tags"]
    ranking.refresh(engine)
    with engine.connect() as conn:
        for q in ("review", "SENTIMENT", "classification", "mood"):
            assert [c["id"] for c in queries.search(conn, q=q)["items"]] == [capsule_id(1)], q
        assert queries.search(conn, q="zebra")["total"] == 0


def test_malformed_manifest__retried_with_exponential_backoff(engine, store):
    bad = json.dumps({"name": "no schema version"}).encode()
    cid = store.put(bad)
    Feed(engine).block_of([minted(1, content_hash=hashlib.sha256(bad).digest())])
    w = ManifestWorker(engine, store=store, base_delay=5, max_delay=60, max_attempts=4)
    assert w.process(now=100.0) == {"malformed": 1}
    r = _row(engine, cid)
    assert (r["status"], r["attempts"], r["next_attempt_at"], r["error_kind"]) == ("retry", 1, 105.0, "malformed")
    assert w.process(now=104.0) == {}  # not due yet
    w.process(now=105.0)
    assert _row(engine, cid)["next_attempt_at"] == 115.0
    w.process(now=115.0)
    assert _row(engine, cid)["next_attempt_at"] == 135.0
    w.process(now=135.0)
    assert _row(engine, cid)["status"] == "failed"
    with engine.connect() as conn:
        s = queries.status(conn)
    assert s["manifests"] == {"failed": 1} and s["retry_queue"][0]["cid"] == cid


def test_unreachable_storage__queued_then_recovers(engine, store):
    data = canonical(manifest("Later", "arrives once the store is back"))
    Feed(engine).block_of([minted(1, content_hash=hashlib.sha256(data).digest())])
    down = ManifestWorker(engine, store=IpfsHttpStore("http://127.0.0.1:9/api/v0", timeout=1), base_delay=2)
    assert down.process(now=10.0) == {"unreachable": 1}
    cid = cid_of(data)
    with engine.connect() as conn:
        queue = queries.status(conn)["retry_queue"]
    assert queue[0]["cid"] == cid and queue[0]["error_kind"] == "unreachable"
    store.put(data)
    assert ManifestWorker(engine, store=store).process(now=12.0) == {"ok": 1}
    assert _row(engine, cid)["status"] == "ok"


def test_bad_cid_in_uri__queued_as_bad_cid(engine, store):
    f = Feed(engine)
    f.block_of([minted(1, uri="ipfs://not-a-cid"), minted(2, uri="ipfs://" + cid_of(b"something else"))])
    assert ManifestWorker(engine, store=store).process(now=1.0) == {"bad_cid": 2}


def test_tampered_bytes_over_url__integrity_failure(engine, store, tmp_path):
    data = canonical(manifest("Real", "the real one"))
    fake = tmp_path / "m.json"
    fake.write_bytes(canonical(manifest("Fake", "swapped")))
    Feed(engine).block_of([minted(1, content_hash=hashlib.sha256(data).digest(), uri=fake.as_uri())])
    assert ManifestWorker(engine, store=store).process(now=1.0) == {"integrity": 1}
    fake.write_bytes(data)
    assert ManifestWorker(engine, store=store).process(now=1e9) == {"ok": 1}
