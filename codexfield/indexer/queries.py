"""Read queries behind the HTTP API: search, capsule detail, lineage, nodes, rankings, status."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, literal, literal_column, or_, select, text, true
from sqlalchemy.sql import operators

from codexfield import scopes
from codexfield.indexer import models as m
from codexfield.indexer.ranking import MODERATED
from codexfield.indexer.tokens import TokenIndex
from codexfield.indexer.tokens import text as amount_text

C, L, S, MF = m.Capsule.__table__, m.LineageEdge.__table__, m.CapsuleScore.__table__, m.Manifest.__table__
# Each order is served by one index on capsule_scores (see models.CapsuleScore), tie-breaker included.
SORTS = {
    "score": (S.c.score.desc(), S.c.capsule_id),
    "newest": (S.c.created_block.desc(), S.c.token_id.desc(), S.c.capsule_id.desc()),
    "rating": (S.c.rating_bayes.desc(), S.c.capsule_id),
    "calls": (S.c.calls.desc(), S.c.capsule_id),
}
TOTAL_CAP = 1000  # search counts matches up to this many; beyond it `total_capped` is true
BROAD_HITS = 2000  # SQLite: a full-text query with more hits is read in sort order (membership test)
CAIP19 = re.compile(r"^eip155:\d+/erc721:0x[0-9a-fA-F]{40}/\d+$")


class BadRequest(ValueError):
    """A parameter a person can fix (the API answers 400 with this message)."""


def _fts(conn: Connection, q: str) -> tuple[Any, str, str]:
    """(clause, form, value): a WHERE clause on `capsule_scores` matching capsules whose manifest
    matches `q` (FTS5 on SQLite, tsvector on PostgreSQL), with its one bind parameter `fts`
    left to the caller (`value`), and which of the clause's forms it is.

    SQLite does not know how many rows a MATCH returns, so we ask FTS5 (a count over its index
    is cheap): a selective query drives the search from its hits; a broad one (more than
    `BROAD_HITS`) becomes a membership test (`+` keeps SQLite from driving from it), so the
    page is read in the order of the sort index and stops after `offset + limit` rows."""
    words = re.findall(r"[^\W_]+", q)  # letters and digits only: nothing a query syntax could read
    if not words:
        raise BadRequest("q: give at least one word to search for")
    if conn.dialect.name == "sqlite":
        match = " ".join(f'"{w}"*' for w in words)
        hits = conn.execute(
            text("SELECT count(*) FROM manifest_fts WHERE manifest_fts MATCH :fts"), {"fts": match}
        ).scalar_one()
        if hits > BROAD_HITS:
            clause = text(
                "(SELECT manifests.rowid FROM manifests WHERE manifests.cid = capsule_scores.cid) IN "
                "(SELECT rowid FROM manifest_fts WHERE manifest_fts MATCH :fts)"
            )
            return clause, "membership", match
        clause = text(
            "capsule_scores.cid IN (SELECT manifests.cid FROM manifests WHERE manifests.rowid IN "
            "(SELECT rowid FROM manifest_fts WHERE manifest_fts MATCH :fts))"
        )
        return clause, "hits", match
    # PostgreSQL: the manifest's vector copied onto the capsule's score row (migration 0006, GIN
    # index), so the planner combines it with the other filters and the sort index on one table.
    clause = text("capsule_scores.search_vector @@ to_tsquery('english', :fts)")
    return clause, "tsvector", " & ".join(f"{w}:*" for w in words)


def _capsule_json(row: Any) -> dict[str, Any]:
    d = dict(row)
    for k in ("min_price_per_mu",):
        if d.get(k) is not None:
            d[k] = str(d[k])
    return d


SUMMARY = [
    C.c.id,
    C.c.chain_id,
    C.c.token_id,
    C.c.kind,
    C.c.creator,
    C.c.creator_did,
    C.c.owner,
    C.c.version,
    C.c.state,
    C.c.cid,
    C.c.created_block,
    MF.c.name,
    MF.c.description,
    MF.c.status.label("manifest_status"),
    S.c.score,
    S.c.moderation,
    S.c.rating_avg,
    S.c.rating_count,
    S.c.rating_bayes,
    S.c.calls,
    S.c.success_rate,
    S.c.avg_latency_ms,
    S.c.audits_valid,
    S.c.min_price_per_mu,
]


def search(
    conn: Connection,
    *,
    q: str | None = None,
    kind: int | None = None,
    creator: str | None = None,
    scope: list[str] | None = None,
    max_price: int | None = None,
    min_rating: float | None = None,
    audited: bool | None = None,
    chain_id: int | None = None,
    include_moderated: bool = False,
    sort: str = "score",
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """One page of capsules matching every given filter, in `sort` order.

    `total` counts the matches exactly up to `TOTAL_CAP`; when there are more, `total_capped` is
    true and `total` is a lower bound (`TOTAL_CAP`, or more when the page itself lies beyond it).
    `next_offset` is exact either way (one row past the page is read to know)."""
    if sort not in SORTS:
        raise BadRequest(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
    # Every indexed capsule has a capsule_scores row (a neutral one at ingest, the real one after
    # `ranking.refresh`) carrying its search attributes: filter, sort and count on that table,
    # then join capsules and manifests for the rows of the page only.
    # The conditions are written with named bind parameters and their values kept apart, so that
    # on PostgreSQL one statement per shape (which filters are given, the sort) is built once and
    # reused: building and compiling the search statement costs more client CPU than the server
    # spends executing it.
    where, values, shape = [], {}, [sort, TOTAL_CAP, include_moderated, audited]
    if q:
        clause, form, values["fts"] = _fts(conn, q)
        where.append(clause)
        shape.append(form)
    for name, col, value in (
        ("kind", S.c.kind, kind),
        ("creator", S.c.creator, creator or None),
        ("chain_id", S.c.chain_id, chain_id),
    ):
        if value is not None:
            where.append(col == bindparam(name))
            values[name] = value
            shape.append(name)
    for i, name in enumerate(scope or []):
        where.append(S.c.scope_names.like(bindparam(f"scope_{i}")))
        values[f"scope_{i}"] = f"%,{name},%"
        shape.append(f"scope_{i}")
    if max_price is not None:
        where.append(S.c.min_price_per_mu <= bindparam("max_price"))
        values["max_price"] = max_price
        shape.append("max_price")
    if min_rating is not None:
        where.append(S.c.rating_avg >= bindparam("min_rating"))
        values["min_rating"] = min_rating
        shape.append("min_rating")
    if audited is not None:
        where.append(S.c.audits_valid > 0 if audited else S.c.audits_valid == 0)
    if not include_moderated:  # constants: no parameter to expand per call
        where.append(S.c.moderation.notin_([literal_column(f"'{v}'") for v in MODERATED]))
    cond = and_(*where) if where else true()
    if conn.dialect.name == "postgresql":
        return _search_pg(conn, tuple(shape), cond, values, sort, limit, offset)
    order = SORTS[sort]
    found = conn.execute(
        select(func.count()).select_from(select(literal(1)).select_from(S).where(cond).limit(TOTAL_CAP + 1).subquery()),
        values,
    ).scalar_one()
    if found <= TOTAL_CAP:
        # Few matches: collect them through the filters' indexes and sort them, rather than walk
        # the sort index past (nearly) every capsule. SQLite cannot see that through `LIMIT ?`, so
        # the sort key is made an expression, which no index serves.
        first = order[0]
        order = ((first.element + 0).desc() if first.modifier is operators.desc_op else first.element + 0, *order[1:])
    page = [
        r[0]
        for r in conn.execute(
            select(S.c.capsule_id).where(cond).order_by(*order).limit(limit + 1).offset(offset), values
        )
    ]
    more = len(page) > limit
    page = page[:limit]
    rows = (
        {
            r["id"]: r
            for r in conn.execute(
                select(*SUMMARY)
                .select_from(C.join(S, S.c.capsule_id == C.c.id).outerjoin(MF, MF.c.cid == C.c.cid))
                .where(C.c.id.in_(page))
            ).mappings()
        }
        if page
        else {}
    )
    return _page(conn, found, limit, offset, more, [rows[i] for i in page if i in rows])


def _page(conn: Connection, found: int, limit: int, offset: int, more: bool, rows: list) -> dict[str, Any]:
    capped = found > TOTAL_CAP
    total = max(TOTAL_CAP, offset + len(rows) + (1 if more else 0)) if capped else found
    items = [_capsule_json(r) for r in rows]
    _min_price_texts(conn, items)
    return {
        "total": total,
        "total_capped": capped,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
        "items": items,
    }


def _min_price_texts(conn: Connection, items: list[dict[str, Any]]) -> None:
    """`min_price_text` of a page: the lowest active price in its terms' token (first terms id
    at that price), read for the page's rows only."""
    priced = [c for c in items if c.get("min_price_per_mu") is not None]
    if not priced:
        return
    T = m.Terms.__table__
    found: dict[str, Any] = {}
    for r in conn.execute(
        select(T.c.capsule_id, T.c.chain_id, T.c.payment_token)
        .where(
            T.c.active.is_(True),
            or_(*(and_(T.c.capsule_id == c["id"], T.c.price_per_mu == int(c["min_price_per_mu"])) for c in priced)),
        )
        .order_by(T.c.terms_id)
    ):
        found.setdefault(r.capsule_id, r)
    tokens = TokenIndex(conn)
    for c in priced:
        r = found.get(c["id"])
        if r is not None:
            c["min_price_text"] = amount_text(c["min_price_per_mu"], tokens.get(r.chain_id, r.payment_token)) + " / MU"


def _sort_key(c) -> tuple[str, bool]:
    """(column name, descending) of one ORDER BY element of `SORTS`."""
    if getattr(c, "modifier", None) is operators.desc_op:
        return c.element.name, True
    return c.name, False


_PG_STATEMENTS: dict[tuple, tuple[Any, Any]] = {}  # shape -> (search statement, count statement)


def _search_pg(
    conn: Connection, shape: tuple, cond, values: dict[str, Any], sort: str, limit: int, offset: int
) -> dict[str, Any]:
    """PostgreSQL: count, page and summary rows in ONE statement (a round trip is the dearest
    part of a cheap query on a busy server).

    `matches` materialises up to `TOTAL_CAP + 1` matching rows with their sort keys, in whatever
    order the planner finds them cheapest (through the filters' indexes). When they are at most
    `TOTAL_CAP`, they are all the matches: the page is sorted from them (`few`). Otherwise the
    page is read in the order of the sort index, filtering as it goes, stopping after
    `offset + limit + 1` rows (`many`). Each branch is gated by the count (a one-time filter:
    the other branch is not executed). One row past the page tells whether there is more.

    The statements of a shape are built once (`_PG_STATEMENTS`); a call passes its values."""
    stmts = _PG_STATEMENTS.get(shape)
    if stmts is None:
        if len(_PG_STATEMENTS) >= 512:  # shapes are few; bound the cache anyway (clear: atomic)
            _PG_STATEMENTS.clear()
        stmts = _PG_STATEMENTS[shape] = _pg_statements(cond, sort, narrow="kind" in shape)
    search_stmt, count_stmt = stmts
    rows = conn.execute(search_stmt, {**values, "page_rows": limit + 1, "page_offset": offset}).mappings().all()
    if rows:
        found = int(rows[0]["n_matches"])
    else:  # the page lies past the matches (or there are none): count them alone
        found = conn.execute(count_stmt, values).scalar_one()
    more = len(rows) > limit
    return _page(
        conn, found, limit, offset, more, [{k: v for k, v in r.items() if k != "n_matches"} for r in rows[:limit]]
    )


def _pg_statements(cond, sort: str, narrow: bool):
    """The search and count statements of one shape (see `_search_pg`).

    The matches carry the page's `capsule_scores` columns, read with the row anyway, so the page
    joins only `capsules` and `manifests` (21 index probes and heap pages fewer per page) —
    unless `narrow`: with a `kind` the matches come from an Index Only Scan of
    `ix_capsule_scores_kind_search` (migration 0007), which holds the sort keys but not every
    score column, and the page joins `capsule_scores` again for its rows."""
    keys = [_sort_key(c) for c in SORTS[sort]]
    names = list(dict.fromkeys(["capsule_id", *(k for k, _ in keys)]))
    if not narrow:
        names += [c.name for c in SUMMARY if c.table is S and c.name not in names]
    matches = (
        select(*(S.c[k] for k in names)).where(cond).limit(TOTAL_CAP + 1).cte("matches").prefix_with("MATERIALIZED")
    )
    n = select(func.count()).select_from(matches).scalar_subquery()
    page_rows, page_offset = bindparam("page_rows"), bindparam("page_offset")

    def ordered(t):
        return [t.c[k].desc() if desc else t.c[k] for k, desc in keys]

    few = (
        select(*(matches.c[k] for k in names))
        .where(n <= TOTAL_CAP)
        .order_by(*ordered(matches))
        .limit(page_rows)
        .offset(page_offset)
        .subquery("few")
    )
    many = (
        select(*(S.c[k] for k in names))
        .where(cond, n > TOTAL_CAP)
        .order_by(*SORTS[sort])
        .limit(page_rows)
        .offset(page_offset)
        .subquery("many")
    )
    page = select(*few.c).union_all(select(*many.c)).subquery("page")
    joined = page.join(C, C.c.id == page.c.capsule_id)
    if narrow:
        columns, joined = SUMMARY, joined.join(S, S.c.capsule_id == C.c.id)
    else:
        columns = [page.c[c.name] if c.table is S else c for c in SUMMARY]
    search_stmt = (
        select(n.label("n_matches"), *columns)
        .select_from(joined.outerjoin(MF, MF.c.cid == C.c.cid))
        .order_by(*ordered(page))
    )
    count_stmt = select(func.count()).select_from(
        select(literal(1)).select_from(S).where(cond).limit(TOTAL_CAP + 1).subquery()
    )
    return search_stmt, count_stmt


def lineage(conn: Connection, capsule_id: str, depth: int = 8, limit: int = 500) -> dict[str, Any]:
    """Ancestors and descendants (recursive CTEs, up to `depth` hops) and the edges among them."""

    def walk(up: bool):
        near, far = (L.c.child_id, L.c.parent_id) if up else (L.c.parent_id, L.c.child_id)
        cte = (
            select(far.label("id"), literal(1).label("depth"))
            .where(near == capsule_id)
            .cte("up" if up else "down", recursive=True)
        )
        step = select(far, cte.c.depth + 1).select_from(L.join(cte, near == cte.c.id)).where(cte.c.depth < depth)
        cte = cte.union(step)
        return conn.execute(
            select(cte.c.id, func.min(cte.c.depth).label("depth"))
            .group_by(cte.c.id)
            .order_by(func.min(cte.c.depth), cte.c.id)
            .limit(limit)
        ).all()

    ancestors, descendants = walk(True), walk(False)
    ids = {capsule_id} | {r.id for r in ancestors} | {r.id for r in descendants}
    edges = conn.execute(
        select(L.c.child_id, L.c.parent_id, L.c.share_bps).where(L.c.child_id.in_(ids), L.c.parent_id.in_(ids))
    ).all()
    info = {
        r.id: dict(r)
        for r in conn.execute(
            select(C.c.id, C.c.kind, C.c.token_id, C.c.state, MF.c.name, S.c.moderation)
            .select_from(C.outerjoin(MF, MF.c.cid == C.c.cid).outerjoin(S, S.c.capsule_id == C.c.id))
            .where(C.c.id.in_(ids))
        ).mappings()
    }
    return {
        "id": capsule_id,
        "ancestors": [{"id": r.id, "depth": r.depth, **info.get(r.id, {})} for r in ancestors],
        "descendants": [{"id": r.id, "depth": r.depth, **info.get(r.id, {})} for r in descendants],
        "edges": [{"child": e.child_id, "parent": e.parent_id, "share_bps": e.share_bps} for e in edges],
        "nodes": {k: {kk: vv for kk, vv in v.items() if kk != "id"} for k, v in info.items()},
    }


def _s(v: Any) -> Any:
    return str(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**53 else v


def _rows(conn: Connection, stmt) -> list[dict[str, Any]]:
    return [{k: _s(v) for k, v in dict(r).items()} for r in conn.execute(stmt).mappings()]


def _big(v: Any) -> Any:
    """`_s` through a JSON value (card numbers beyond 2^53 become strings, as `BigInt`)."""
    if isinstance(v, dict):
        return {k: _big(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_big(x) for x in v]
    return _s(v)


def _card(text_: str | None) -> dict[str, Any] | None:
    if not text_:
        return None
    try:
        return _big(json.loads(text_))
    except ValueError:
        return None


def terms_ldl(t: dict[str, Any], tokens: TokenIndex) -> str | None:
    """The LDL text of a `terms` row (`codexfield.ldl.decompile`, with the chain's listed tokens)."""
    from codexfield.ldl import Terms, decompile

    try:
        terms = Terms(
            capsule_id=int(str(t["capsule_id"]).rsplit("/", 1)[-1]),
            payment_token=t["payment_token"],
            price_per_mu=int(t["price_per_mu"]),
            upfront_fee=int(t["upfront_fee"]),
            meter=t["meter"],
            duration=int(t["duration"]),
            mu_quota=int(t["mu_quota"]),
            rate_mu=int(t["rate_mu"]),
            rate_period=int(t["rate_period"]),
            scope=int(t["scope"]),
            derivative_share_bps=int(t["derivative_share_bps"]),
            revocation=int(t["revocation"]),
            notice_period=int(t["notice_period"]),
            max_credentials=int(t["max_credentials"]),
            transferable=bool(t["transferable"]),
            text_hash=t["text_hash"],
        )
        chain_id = int(t["chain_id"])
        return decompile(terms, chain_id=chain_id, token_list=tokens.token_list(chain_id))
    except (ValueError, TypeError):  # a row no Terms struct can hold (e.g. an empty meter): no text
        return None


def capsule(conn: Connection, capsule_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(C).where(C.c.id == capsule_id)).mappings().first()
    if row is None:
        return None
    out: dict[str, Any] = dict(row)
    tokens, chain_id = TokenIndex(conn), int(row["chain_id"])
    T, CU, RV, RF, R, A, CR = (
        m.Terms.__table__,
        m.CapsuleUsage.__table__,
        m.RoyaltyVault.__table__,
        m.RoyaltyFlow.__table__,
        m.Rating.__table__,
        m.Attestation.__table__,
        m.Credential.__table__,
    )
    man = conn.execute(select(MF).where(MF.c.cid == row["cid"])).mappings().first()
    out["manifest"] = (
        None
        if man is None
        else {
            "status": man["status"],
            "name": man["name"],
            "description": man["description"],
            "tags": man["tags"],
            "attempts": man["attempts"],
            "error_kind": man["error_kind"],
            "last_error": man["last_error"],
            "card": _card(man["card"]),
        }
    )
    sc = conn.execute(select(S).where(S.c.capsule_id == capsule_id)).mappings().first()
    out["score"] = None if sc is None else {k: _s(v) for k, v in dict(sc).items() if k != "capsule_id"}
    if out["score"] is not None and out["score"]["min_price_per_mu"] is not None:
        out["score"]["min_price_per_mu"] = str(out["score"]["min_price_per_mu"])  # uint256: a string, as in search
    out["terms"] = _rows(conn, select(T).where(T.c.capsule_id == capsule_id).order_by(T.c.terms_id))
    for t in out["terms"]:
        t["scopes"] = [n for n in t.pop("scope_names").split(",") if n]
        t["ldl"] = terms_ldl(t, tokens)
        for k in ("price_per_mu", "upfront_fee", "mu_quota", "rate_mu", "scope"):
            t[k] = str(t[k])
        t["token"] = tokens.get(chain_id, t["payment_token"])
        t["price_per_mu_text"] = amount_text(t["price_per_mu"], t["token"])
        t["upfront_fee_text"] = amount_text(t["upfront_fee"], t["token"])
    out["credentials"] = conn.execute(
        select(func.count()).select_from(CR).where(CR.c.capsule_id == capsule_id)
    ).scalar_one()
    usage = conn.execute(select(CU).where(CU.c.capsule_id == capsule_id)).mappings().first()
    out["usage"] = {
        k: str(v) if k in ("mu", "license_amount", "node_amount") else v
        for k, v in (
            dict(usage)
            if usage
            else {"mu": 0, "calls": 0, "failures": 0, "latency_ms": 0, "license_amount": 0, "node_amount": 0}
        ).items()
        if k != "capsule_id"
    }
    # usage sums every credential's payments: in token units when all the terms share one token
    used = {t["payment_token"].lower(): t["token"] for t in out["terms"]}
    out["usage"]["token"] = next(iter(used.values())) if len(used) == 1 else None
    for k in ("license_amount", "node_amount"):
        out["usage"][k + "_text"] = (
            amount_text(out["usage"][k], out["usage"]["token"])
            if out["usage"]["token"]
            else f"{out['usage'][k]} raw units" + (f" (terms in {len(used)} tokens)" if used else "")
        )
    out["royalties"] = []
    for r in _rows(conn, select(RV).where(RV.c.capsule_id == capsule_id)):
        r = {k: str(v) if isinstance(v, int) else v for k, v in r.items() if k != "capsule_id"}
        r["token_info"] = tokens.get(chain_id, r["token"])
        for k in ("vault", "claimable", "credited_total", "from_children_total", "to_parents_total", "claimed_total"):
            r[k + "_text"] = amount_text(r[k], r["token_info"])
        out["royalties"].append(r)
    out["royalty_flows"] = []
    for r in _rows(conn, select(RF).where(or_(RF.c.source == capsule_id, RF.c.target == capsule_id))):
        info = tokens.get(chain_id, r["token"])
        out["royalty_flows"].append(
            {**r, "amount": str(r["amount"]), "token_info": info, "amount_text": amount_text(r["amount"], info)}
        )
    agg = conn.execute(
        select(func.coalesce(func.sum(R.c.stars), 0), func.count()).where(R.c.capsule_id == capsule_id)
    ).one()
    out["rating"] = {"sum": int(agg[0]), "count": int(agg[1]), "average": (int(agg[0]) / agg[1]) if agg[1] else None}
    out["attestations"] = _rows(conn, select(A).where(A.c.capsule_id == capsule_id).order_by(A.c.attestation_id))
    out["versions"] = [
        r[0] for r in conn.execute(select(C.c.id).where(C.c.root_id == row["root_id"]).order_by(C.c.version))
    ]
    out["lineage"] = lineage(conn, capsule_id, depth=4, limit=100)
    return out


def nodes(conn: Connection, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    N, ES = m.Node.__table__, m.EpochScore.__table__
    total = conn.execute(select(func.count()).select_from(N)).scalar_one()
    items = _rows(conn, select(N).order_by(N.c.reliability.desc(), N.c.id).limit(limit).offset(offset))
    for n in items:
        for k in ("services", "price_per_mu", "stake", "unbonding", "reliability", "slashed_total", "rewards_claimed"):
            n[k] = str(n[k])
        n["epochs"] = [
            {
                k: str(v) if k in ("quality", "reliability", "weight") and v is not None else v
                for k, v in e.items()
                if k != "node"
            }
            for e in _rows(conn, select(ES).where(ES.c.node == n["id"]).order_by(ES.c.epoch.desc()).limit(10))
        ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def status(conn: Connection) -> dict[str, Any]:
    chains = []
    for r in conn.execute(select(m.Chain.__table__)).mappings():
        chains.append(
            {
                "chain_id": r["chain_id"],
                "head": r["head"],
                "indexed_block": r["indexed_block"],
                "lag": max(0, r["head"] - r["indexed_block"]),
                "reorgs": r["reorgs"],
                "updated_at": r["updated_at"],
                "contracts": json.loads(r["contracts"] or "{}"),
            }
        )
    counts = dict(conn.execute(select(MF.c.status, func.count()).group_by(MF.c.status)).all())
    queue = _rows(
        conn,
        select(MF.c.cid, MF.c.status, MF.c.attempts, MF.c.next_attempt_at, MF.c.error_kind, MF.c.last_error)
        .where(MF.c.status.in_(["retry", "failed"]))
        .order_by(MF.c.next_attempt_at)
        .limit(50),
    )
    now = time.time()
    for item in queue:
        item["retry_in_s"] = max(0.0, round(item["next_attempt_at"] - now, 1)) if item["status"] == "retry" else None
    return {
        "chains": chains,
        "manifests": counts,
        "retry_queue": queue,
        "capsules": conn.execute(select(func.count()).select_from(C)).scalar_one(),
    }


def scope_names() -> list[str]:
    return list(scopes.BY_NAME)


def capsule_exists(conn: Connection, capsule_id: str) -> bool:
    return conn.execute(select(C.c.id).where(C.c.id == capsule_id)).first() is not None
