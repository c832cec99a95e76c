"""Search at scale keeps its answers: the capped total is a lower bound with exact paging, and
every query plan (full text driving vs membership test, index order vs sort of few matches)
returns the same page; search attributes follow reorgs."""

from __future__ import annotations

import pytest

from codexfield.indexer import queries

from catalog import populate
from synth import BOB, Feed, capsule_id, minted

SORTS = ("score", "newest", "rating", "calls")
QUERIES = [{}, {"q": "sentiment"}, {"q": "model"}, {"q": "reviews", "kind": 2}, {"kind": 2}, {"creator": BOB},
           {"include_moderated": True}, {"q": "prompts", "include_moderated": True}, {"min_rating": 4}]


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
    if catalog.dialect.name != "sqlite":
        pytest.skip("the plan choices (hit count, sort-key expression) are SQLite's; PostgreSQL's planner decides")
    with catalog.connect() as conn:
        expected = {(i, s): _all(conn, p, s, limit=100) for i, p in enumerate(QUERIES) for s in SORTS}
        assert expected[(1, "score")] and expected[(1, "newest")] == [capsule_id(3), capsule_id(2)]
        for broad, cap in ((0, 1000), (10**9, 0), (0, 0)):
            monkeypatch.setattr(queries, "BROAD_HITS", broad)
            monkeypatch.setattr(queries, "TOTAL_CAP", cap)
            for (i, s), ids in expected.items():
                assert _all(conn, QUERIES[i], s, limit=2) == ids, (QUERIES[i], s, broad, cap)


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
