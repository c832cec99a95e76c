"""Moderation and the published ranking formula.

Moderation (never deletes anything):
    * `flagged`   — the capsule's state is FLAGGED (an arbiter's dispute tag);
    * `disabled`  — its owner DISABLED it;
    * `derivative_of_flagged` — some ancestor through lineage edges (transitively) is FLAGGED;
    * `deprecated` — still usable, shown with a tag; ranked normally;
    * `ok`        — none of the above.
Moderated capsules (flagged, disabled, derivative_of_flagged) are hidden from search by
default (`include_moderated=true` shows them) and get a score of 0.

Ranking score of a capsule, 0..100 (all inputs from events):

    calls, failures, latency = sums of UsageRecorded deltas over the capsule's channels
    success  = (calls - failures + 1) / (calls + 2)            Laplace-smoothed success rate
    latency  = 1 / (1 + avg_latency_ms / L0)   with L0 = 1000 ms; 0.5 when there are no calls
    bayes    = (C * m + Σ stars) / (C + n)     Bayesian average of the n verified ratings,
                                               C = 5 pseudo-ratings at m = the catalog's mean
                                               star (3.0 while the catalog has no rating)
    rating   = (bayes - 1) / 4
    audit    = 1 if the capsule has a passed, unrevoked, unexpired attestation, else 0
    volume   = ln(1 + calls) / ln(1 + max calls of any capsule)   (0 when nobody has calls)

    score = 100 * (0.30 success + 0.15 latency + 0.25 rating + 0.15 audit + 0.15 volume)

Ratings are "verified" by construction: Reputation accepts only holders of a credential with
metered usage, one rating per credential.

Many indexers (one per chain) may refresh the same catalog at once. `refresh` never deletes
and re-inserts the table: it upserts every row, rewriting only those whose values changed, and
deletes only the rows of capsules that no longer exist (rolled back by a reorg), in one
transaction. On PostgreSQL that transaction first takes a transaction-scoped advisory lock
(`REFRESH_LOCK`), so concurrent refreshes run one after the other; ingest's neutral rows for
new capsules are `ON CONFLICT DO NOTHING` inserts, so neither side can hit the primary key.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

from sqlalchemy import Connection, Engine, delete, select, text

from codexfield.constants import CapsuleState
from codexfield.indexer import models as m
from codexfield.indexer.db import bulk_insert

W_SUCCESS, W_LATENCY, W_RATING, W_AUDIT, W_VOLUME = 0.30, 0.15, 0.25, 0.15, 0.15
LATENCY_L0_MS = 1000.0
PRIOR_WEIGHT = 5
PRIOR_MEAN = 3.0
MODERATED = ("flagged", "disabled", "derivative_of_flagged")
REFRESH_LOCK = 0x436F646578  # pg_advisory_xact_lock key of `refresh` ("Codex")
CHUNK = 5000


def upsert(conn: Connection, table, rows: list[dict], *, update_columns: bool = True) -> None:
    """INSERT rows; on a primary-key conflict update the row only where a value differs (an
    unchanged row is not rewritten), or with `update_columns=False` keep the existing row —
    PostgreSQL and SQLite (`db.bulk_insert`)."""
    for i in range(0, len(rows), CHUNK):
        bulk_insert(
            conn, table, rows[i : i + CHUNK], on_conflict="update" if update_columns else "nothing", only_changed=True
        )


def score(
    calls: int,
    failures: int,
    latency_ms: int,
    rating_sum: int,
    rating_count: int,
    audited: bool,
    max_calls: int,
    mean_stars: float,
) -> dict[str, float]:
    """The formula above for one capsule; returns the parts and the score."""
    success = (max(calls - failures, 0) + 1) / (calls + 2)
    avg_latency = latency_ms / calls if calls else None
    latency = 0.5 if avg_latency is None else 1.0 / (1.0 + avg_latency / LATENCY_L0_MS)
    bayes = (PRIOR_WEIGHT * mean_stars + rating_sum) / (PRIOR_WEIGHT + rating_count)
    rating = (bayes - 1.0) / 4.0
    volume = math.log1p(calls) / math.log1p(max_calls) if max_calls > 0 else 0.0
    total = 100.0 * (
        W_SUCCESS * success
        + W_LATENCY * latency
        + W_RATING * rating
        + W_AUDIT * (1.0 if audited else 0.0)
        + W_VOLUME * volume
    )
    return {"success_rate": success, "avg_latency_ms": avg_latency, "rating_bayes": bayes, "score": total}


def moderation(states: dict[str, int], children: dict[str, list[str]]) -> dict[str, str]:
    out = {}
    for cid, state in states.items():
        out[cid] = {
            CapsuleState.FLAGGED: "flagged",
            CapsuleState.DISABLED: "disabled",
            CapsuleState.DEPRECATED: "deprecated",
        }.get(state, "ok")
    stack = [c for c, s in states.items() if s == CapsuleState.FLAGGED]
    seen = set(stack)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
                if out.get(child) in ("ok", "deprecated"):
                    out[child] = "derivative_of_flagged"
    return out


def refresh(engine: Engine, now: float | None = None) -> int:
    """Recompute `capsule_scores` for every capsule; returns the number of capsules."""
    now = time.time() if now is None else now
    C, L, U, R, A, T = (
        m.Capsule.__table__,
        m.LineageEdge.__table__,
        m.CapsuleUsage.__table__,
        m.Rating.__table__,
        m.Attestation.__table__,
        m.Terms.__table__,
    )
    with engine.connect() as conn:
        attrs = {r.id: r for r in conn.execute(select(C.c.id, C.c.state, *(C.c[a] for a in m.SEARCH_ATTRIBUTES)))}
        states = {cid: r.state for cid, r in attrs.items()}
        children: dict[str, list[str]] = defaultdict(list)
        for child, parent in conn.execute(select(L.c.child_id, L.c.parent_id)):
            children[parent].append(child)
        usage = {r.capsule_id: r for r in conn.execute(select(U.c.capsule_id, U.c.calls, U.c.failures, U.c.latency_ms))}
        ratings: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for capsule_id, stars in conn.execute(select(R.c.capsule_id, R.c.stars)):
            ratings[capsule_id][0] += stars
            ratings[capsule_id][1] += 1
        audited = {
            r[0]
            for r in conn.execute(
                select(A.c.capsule_id)
                .where(A.c.passed.is_(True), A.c.revoked.is_(False))
                .where((A.c.valid_until == 0) | (A.c.valid_until > int(now)))
            )
        }
        prices: dict[str, int] = {}
        scope_names: dict[str, set[str]] = defaultdict(set)
        for capsule_id, price, names in conn.execute(
            select(T.c.capsule_id, T.c.price_per_mu, T.c.scope_names).where(T.c.active.is_(True))
        ):
            prices[capsule_id] = min(price, prices.get(capsule_id, price))
            scope_names[capsule_id].update(n for n in names.split(",") if n)
    total_stars = sum(v[0] for v in ratings.values())
    total_count = sum(v[1] for v in ratings.values())
    mean = total_stars / total_count if total_count else PRIOR_MEAN
    max_calls = max((u.calls for u in usage.values()), default=0)
    mod = moderation(states, children)
    rows = []
    for cid in states:
        u = usage.get(cid)
        calls, failures, lat = (u.calls, u.failures, u.latency_ms) if u else (0, 0, 0)
        rs, rc = ratings.get(cid, (0, 0))
        parts = score(calls, failures, lat, rs, rc, cid in audited, max_calls, mean)
        if mod[cid] in MODERATED:
            parts["score"] = 0.0
        rows.append(
            {
                "capsule_id": cid,
                "moderation": mod[cid],
                "calls": calls,
                "rating_count": rc,
                "rating_avg": rs / rc if rc else None,
                "audits_valid": 1 if cid in audited else 0,
                "min_price_per_mu": prices.get(cid),
                "scope_names": "," + ",".join(sorted(scope_names.get(cid, ()))) + ",",
                **parts,
                **{a: getattr(attrs[cid], a) for a in m.SEARCH_ATTRIBUTES},
            }
        )
    S = m.CapsuleScore.__table__
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": REFRESH_LOCK})
        cols = [c.name for c in S.columns]
        upsert(conn, S, [{c: r.get(c) for c in cols} for r in rows])
        # Rows of capsules that are gone (a reorg removed them): the only deletes.
        conn.execute(delete(S).where(~select(C.c.id).where(C.c.id == S.c.capsule_id).exists()))
    return len(rows)


def _differs(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is None or b is None or not math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a != b
