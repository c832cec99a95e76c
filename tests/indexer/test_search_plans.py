"""Search at scale keeps its answers: the capped total is a lower bound with exact paging, and
every query plan (full text driving vs membership test, index order vs sort of few matches)
returns the same page; search attributes follow reorgs. On a bulk-loaded catalog each search
uses the index meant for it (EXPLAIN), and the benchmark script runs in a tiny bounded
configuration and prints every field (timings are not asserted)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import event

from codexfield.indexer import queries
from codexfield.indexer.manifests import ManifestWorker
from codexfield.manifest import canonical
from codexfield.store import LocalStore

from catalog import populate
from synth import ALICE, BOB, Feed, capsule_id, minted

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench_indexer.py"

SORTS = ("score", "newest", "rating", "calls")
QUERIES = [
    {},
    {"q": "sentiment"},
    {"q": "model"},
    {"q": "reviews", "kind": 2},
    {"kind": 2},
    {"creator": BOB},
    {"include_moderated": True},
    {"q": "prompts", "include_moderated": True},
    {"min_rating": 4},
]


def _all(conn, params, sort, limit=1):
    out, offset = [], 0
    while offset is not None:
        page = queries.search(conn, **params, sort=sort, limit=limit, offset=offset)
        out += [c["id"] for c in page["items"]]
        offset = page["next_offset"]
    return out


@pytest.fixture
def catalog(engine, tmp_path):
    populate(engine, tmp_path)
    return engine


def test_search__over_the_cap__total_is_a_lower_bound_and_paging_stays_exact(catalog, monkeypatch):
    with catalog.connect() as conn:
        full = queries.search(conn, limit=100)
        assert (full["total"], full["total_capped"]) == (3, False)
        everything = [c["id"] for c in full["items"]]
        monkeypatch.setattr(queries, "TOTAL_CAP", 1)
        first = queries.search(conn, limit=1)
        assert first["total_capped"] is True and 1 <= first["total"] <= 3 and first["next_offset"] == 1
        last = queries.search(conn, limit=1, offset=2)
        assert last["total"] == 3 and last["next_offset"] is None  # a page past the cap raises the bound
        assert _all(conn, {}, "score") == everything


def test_search__every_plan_returns_the_same_pages(catalog, monkeypatch):
    """SQLite: hits-driven vs membership test, index order vs sorted few matches; PostgreSQL: the
    page sorted from the materialised matches (at most TOTAL_CAP) vs read in sort-index order."""
    with catalog.connect() as conn:
        expected = {(i, s): _all(conn, p, s, limit=100) for i, p in enumerate(QUERIES) for s in SORTS}
        assert expected[(1, "score")] and expected[(1, "newest")] == [capsule_id(3), capsule_id(2)]
        for broad, cap in ((0, 1000), (10**9, 0), (0, 0)):
            monkeypatch.setattr(queries, "BROAD_HITS", broad)
            monkeypatch.setattr(queries, "TOTAL_CAP", cap)
            for (i, s), ids in expected.items():
                assert _all(conn, QUERIES[i], s, limit=2) == ids, (QUERIES[i], s, broad, cap)


def test_search__one_statement_per_shape__each_call_answers_with_its_own_values(catalog):
    """PostgreSQL builds the statement of a shape once and passes each call's values: calls of
    one shape with other values, in any order, answer as a first call of that shape does."""
    calls = [{"kind": k, "sort": s} for k in (1, 2, 4, 5) for s in ("score", "newest")]
    calls += [{"q": w, "kind": 2} for w in ("model", "reviews", "zzz")] + [{"creator": c} for c in (ALICE, BOB)]
    calls += [{"q": w} for w in ("sentiment", "prompts", "model")] + [{"min_rating": r} for r in (1, 5)]
    with catalog.connect() as conn:
        fresh = []
        for params in calls:
            queries._PG_STATEMENTS.clear()
            fresh.append(queries.search(conn, **params, limit=100))
        assert any(f["items"] for f in fresh) and any(not f["items"] for f in fresh)
        for params, expected in reversed(list(zip(calls, fresh))):
            assert queries.search(conn, **params, limit=100) == expected, params


def test_reorg__drops_scores_of_removed_capsules__a_new_mint_gets_its_own_attributes(engine):
    f = Feed(engine)
    fork = f.block_of([minted(1, kind=1)])
    f.block_of([minted(2, kind=1)])
    with engine.connect() as conn:
        assert queries.search(conn, kind=1)["total"] == 2
    f.idx.rollback(fork)
    with engine.connect() as conn:
        assert queries.search(conn, kind=1)["total"] == 1
    f.block_of([minted(2, kind=5)])
    with engine.connect() as conn:
        assert [c["id"] for c in queries.search(conn, kind=5)["items"]] == [capsule_id(2)]
        assert [c["id"] for c in queries.search(conn, kind=1)["items"]] == [capsule_id(1)]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_indexer", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _plans(engine, **params) -> str:
    """The plans of the statements `queries.search(**params)` runs (EXPLAIN; SQLite: QUERY PLAN)."""
    stmts = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            stmts.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            queries.search(conn, **params)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    out = []
    with engine.connect() as conn:
        cur = conn.connection.dbapi_connection.cursor()
        for statement, parameters in stmts:
            if engine.dialect.name == "postgresql":
                cur.execute("EXPLAIN " + statement, parameters)
                out += [r[0] for r in cur.fetchall()]
            else:
                cur.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                out += [r[-1] for r in cur.fetchall()]
    return "\n".join(out)


def test_search__on_a_loaded_catalog__uses_the_index_meant_for_it(engine):
    bench = _bench()
    bench.load_catalog(engine, 4000)  # 4,000 capsules, rankings refreshed, (VACUUM) ANALYZE
    with engine.connect() as conn:
        specific = queries.search(conn, q="tok7x", limit=100)
        broad = queries.search(conn, q="sentiment", kind=3, sort="newest", limit=5)
    assert 0 < specific["total"] < 100 and not specific["total_capped"]
    assert all(c["kind"] == 3 for c in broad["items"]) and broad["items"]
    newest = [c["created_block"] for c in broad["items"]]
    assert newest == sorted(newest, reverse=True)
    plan = _plans(engine, q="tok7x")
    rating = _plans(engine, kind=3, min_rating=1.0)
    assert "ix_capsule_scores_rating_avg" in rating, rating
    if engine.dialect.name == "postgresql":
        assert "ix_capsule_scores_search_vector" in plan and "Seq Scan on manifests" not in plan, plan
        # text + kind: counted and paged on the kind's entries of the covering index (0007)
        kind_text = _plans(engine, q="sentiment", kind=3, sort="newest")
        assert "Index Only Scan using ix_capsule_scores_kind_search" in kind_text, kind_text
        assert "Index Only Scan Backward using ix_capsule_scores_kind_search" in kind_text, kind_text
    else:
        assert "manifest_fts" in plan, plan


def test_search__a_manifest_fetched_or_shared_later_is_found(engine, tmp_path):
    """PostgreSQL keeps the manifest's text vector on the capsule's score row: a manifest fetched
    after the mint, and a capsule minted later with an already fetched CID, are both found."""
    store = LocalStore(tmp_path / "store")
    data = canonical(
        {
            "schema_version": 1,
            "name": "Zebra finch songs",
            "kind": "dataset",
            "description": "birdsong recordings",
            "files": [{"path": "a.bin", "size": 1, "sha256": "00" * 32}],
        }
    )
    store.put(data)
    digest = hashlib.sha256(data).digest()
    f = Feed(engine)
    f.block_of([minted(1, content_hash=digest)])
    with engine.connect() as conn:
        assert queries.search(conn, q="zebra")["total"] == 0  # not fetched yet
    ManifestWorker(engine, store=store).process()
    f.block_of([minted(2, creator=ALICE, content_hash=digest)])  # the same content, minted again
    with engine.connect() as conn:
        found = queries.search(conn, q="zebra finch", sort="newest")
    assert [c["id"] for c in found["items"]] == [capsule_id(2), capsule_id(1)]


def test_bench_script__tiny_bounded_run__prints_every_field(tmp_path):
    dbs = "sqlite,postgresql" if os.environ.get("CODEXFIELD_TEST_PG_URL") else "sqlite"
    r = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--databases",
            dbs,
            "--capsules",
            "1500",
            "--events",
            "400",
            "--batch",
            "200",
            "--queries",
            "3",
            "--max-seconds",
            "240",
            "--explain",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "ingest into the loaded catalog" in out and "load 1,500 capsules" in out
    for db in dbs.split(","):
        assert f"| {db} | " in out
    for mix in (
        "full text, specific word",
        "full text, broad word",
        "full text + kind + sort newest",
        "filters only (kind, min_rating)",
        "ranking page 5",
        "lineage (depth 8, both directions)",
    ):
        assert out.count(f"| {mix}") == len(dbs.split(",")), mix
    if "postgresql" in dbs:
        assert "ix_capsule_scores_search_vector" in r.stderr  # --explain: the GIN index drives full text


def test_bench_script__time_cap__stops_by_itself():
    r = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--databases",
            "sqlite",
            "--capsules",
            "200000",
            "--events",
            "10",
            "--queries",
            "1",
            "--max-seconds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 1
    assert "time cap reached during the load" in r.stderr and "Traceback" not in r.stderr
