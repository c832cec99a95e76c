"""Indexer benchmark (not a test): ingestion events/s and search latency at scale.

    python scripts/bench_indexer.py --pg URL --capsules 1000000 --events 100000 --check --write-docs
    python scripts/bench_indexer.py --pg URL --capsules 20000 --events 5000 --queries 50   # a quick run

* search: `--capsules` capsules with manifests, lineage and usage bulk-loaded in chunks of
  10,000 rows (`db.bulk_insert`, the ingest's own bulk path), rankings refreshed, VACUUM
  ANALYZE (what autovacuum does after a bulk load), then a mix of full-text, filtered and
  sorted queries through `queries.search`; p50 / p99 over `--queries` runs of each. With
  `--explain` the plan (EXPLAIN ANALYZE) of one query of each mix is printed on stderr.
* ingestion, then, into that loaded catalog: synthetic decoded events (mints with parents,
  usage records, ratings, royalty credits) applied through the real `Indexer.apply` path
  (handlers + undo journal + block hashes + checkpoint in one transaction per range of
  `--batch` events), twice (each on its own chain id): all events of a range in one block, and
  one event per block (the journal keeps one entry per row and block, so this is the costlier
  case); decoding from RPC is not included.
* `--check` exits 1 unless every search p99 is below `--p99-ms` (50) and both ingest rates are
  at least `--min-rate` (2,000 events/s) on every database run.
* `--max-seconds` bounds the whole run: past it the script stops at the next chunk, range or
  query (a hard alarm 120 s later), drops its database and exits 1 naming the phase.
`--databases` picks sqlite and/or postgresql (default: postgresql when `--pg` or
`$CODEXFIELD_TEST_PG_URL` is given, else sqlite). With `--write-docs` the result table
replaces the block between the bench markers in docs/indexer.md. The peak resident memory of
the process is printed too (the rankings refresh holds the catalog's scores in memory).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import resource
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import click
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "indexer"))

from codexfield.indexer import models as m  # noqa: E402
from codexfield.indexer import queries, ranking  # noqa: E402
from codexfield.indexer.abi import DecodedEvent  # noqa: E402
from codexfield.indexer.db import bulk_insert, make_engine, migrate  # noqa: E402

WORDS = (
    "sentiment vision speech translation medical legal finance code llama diffusion tabular reviews "
    "embedding retrieval summarization detection segmentation forecast genomics climate chat agent"
).split()


class OutOfTime(RuntimeError):
    """The run passed `--max-seconds`."""


DEADLINE = [math.inf]  # time.monotonic() past which the run stops (set by main)


def on_time(phase: str) -> None:
    if time.monotonic() > DEADLINE[0]:
        raise OutOfTime(f"time cap reached during {phase}")


def engine_for(kind: str, pg_url: str | None, tmp: Path):
    if kind == "sqlite":
        eng = make_engine(tmp / f"bench-{uuid.uuid4().hex[:6]}.db")
        migrate(eng)
        return eng, lambda: None
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = make_engine(pg_url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    eng = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    migrate(eng)

    def drop():
        eng.dispose()
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))

    return eng, drop


def bench_ingest(engine, n_events: int, batch: int, per_block: int, chain_id: int = 31337) -> float:
    """events/s through `Indexer.apply`, `batch` events per range, `per_block` events per block."""
    from synth import ADDR, credited, make_indexer, minted, rated, usage

    idx = make_indexer(engine, chain_id=chain_id)
    rng = random.Random(1)
    events, minted_n = [], 0
    while len(events) < n_events:
        r = rng.random()
        if r < 0.4 or minted_n < 10:
            minted_n += 1
            parents = [(p, 1000) for p in rng.sample(range(1, minted_n), min(2, minted_n - 1))] if minted_n > 2 else []
            events.append(minted(minted_n, parents=parents))
        elif r < 0.8:
            events.append(usage(rng.randint(1, 50), rng.randint(1, minted_n)))
        elif r < 0.9:
            events.append(rated(rng.randint(1, minted_n), rng.randint(1, 10**6), rng.randint(1, 5)))
        else:
            events.append(credited(rng.randint(1, minted_n), rng.randint(1, 10**9)))
    t0 = time.perf_counter()
    start = idx.checkpoint() + 1
    for i in range(0, len(events), batch):
        on_time("ingest")
        decoded, headers = [], {}
        for j, (contract, name, args) in enumerate(events[i : i + batch]):
            n = start + j // per_block
            h = "0x" + hashlib.sha256(str(n).encode()).hexdigest()
            headers[n] = {"hash": h, "parentHash": "0x" + "00" * 32, "timestamp": n * 10}
            decoded.append(
                DecodedEvent(
                    contract=contract,
                    name=name,
                    address=ADDR[contract],
                    block_number=n,
                    block_hash=h,
                    log_index=j % per_block,
                    tx_hash="0x" + "00" * 32,
                    args=args,
                )
            )
        end = max(headers)
        idx.apply(decoded, headers, start, end, end)
        start = end + 1
    return len(events) / (time.perf_counter() - t0)


LOAD_CHUNK = 10_000


def load_catalog(engine, n: int) -> tuple[float, float]:
    """Bulk-load `n` capsules (streamed in chunks), refresh rankings, ANALYZE; returns (load s, refresh s)."""
    rng = random.Random(2)
    reg = "0x" + "11" * 20
    t0 = time.perf_counter()
    for lo in range(1, n + 1, LOAD_CHUNK):
        on_time(f"the load ({lo - 1:,} of {n:,} capsules)")
        caps, mans, edges, usage = [], [], [], []
        for i in range(lo, min(n, lo + LOAD_CHUNK - 1) + 1):
            cid = f"bafkrei{hashlib.sha256(str(i).encode()).hexdigest()[:52]}"
            words = rng.sample(WORDS, 4)
            cap_id = f"eip155:1/erc721:{reg}/{i}"
            caps.append(
                {
                    "id": cap_id,
                    "chain_id": 1,
                    "registry_address": reg,
                    "token_id": i,
                    "kind": rng.randint(1, 7),
                    "content_hash": "0x" + "00" * 32,
                    "cid": cid,
                    "creator": "0x" + f"{rng.randint(1, 500):040x}",
                    "creator_did": "",
                    "owner": "0x" + "00" * 20,
                    "version": 1,
                    "previous_id": None,
                    "root_id": cap_id,
                    "latest_id": None,
                    "uri": "",
                    "state": 1 if rng.random() > 0.01 else 4,
                    "created_block": i,
                    "created_at": i,
                }
            )
            mans.append(
                {
                    "cid": cid,
                    "uri": "",
                    "status": "ok",
                    "attempts": 1,
                    "next_attempt_at": 0.0,
                    "name": f"{words[0]} {words[1]} {i}",
                    "description": " ".join(words),
                    "tags": f"{words[3]} tok{rng.randint(0, 999)}x",
                    "body": "",
                }
            )
            if i > 10 and rng.random() < 0.5:
                edges.append(
                    {
                        "child_id": cap_id,
                        "parent_id": f"eip155:1/erc721:{reg}/{rng.randint(1, i - 1)}",
                        "position": 0,
                        "share_bps": 500,
                    }
                )
            if rng.random() < 0.3:
                usage.append(
                    {
                        "capsule_id": cap_id,
                        "mu": 0,
                        "calls": rng.randint(0, 10000),
                        "failures": rng.randint(0, 50),
                        "latency_ms": rng.randint(0, 10**6),
                        "license_amount": 0,
                        "node_amount": 0,
                    }
                )
        with engine.begin() as conn:  # the bulk path of ingest (binary arrays through unnest on PostgreSQL)
            for rows, table in ((caps, m.Capsule), (mans, m.Manifest), (edges, m.LineageEdge), (usage, m.CapsuleUsage)):
                bulk_insert(conn, table.__table__, rows)
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    ranking.refresh(engine)
    refresh = time.perf_counter() - t1
    # Planner statistics and the visibility map, as autovacuum keeps them after a bulk load; then
    # a CHECKPOINT, as the server's own (every checkpoint_timeout, 5 min by default) would have
    # written out the pages the load and the vacuum dirtied before a catalog serves searches:
    # otherwise the first queries measured evict dirty buffers, a cost of the load, not of search.
    with engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        auto.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
        if engine.dialect.name == "postgresql":
            try:
                auto.execute(text("CHECKPOINT"))
            except sa_exc.ProgrammingError:  # the role lacks pg_checkpoint (tools/ensure_postgres.sh grants it)
                print("note: CHECKPOINT not permitted for this role; the first searches pay for the load's dirty pages")
    return load, refresh


def search_mixes(rng: random.Random) -> dict:
    return {
        "full text, specific word (~0.1% of capsules)": lambda: {"q": f"tok{rng.randint(0, 999)}x"},
        "full text, broad word (~18% of capsules)": lambda: {"q": rng.choice(WORDS)},
        "full text + kind + sort newest": lambda: {"q": rng.choice(WORDS), "kind": rng.randint(1, 7), "sort": "newest"},
        "filters only (kind, min_rating)": lambda: {"kind": rng.randint(1, 7), "min_rating": 1.0},
        "ranking page 5": lambda: {"offset": 80, "limit": 20},
    }


def bench_search(engine, runs: int, n_capsules: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(3)
    out = {}
    for name, mk in search_mixes(rng).items():
        times = []
        with engine.connect() as conn:
            for _ in range(runs):
                on_time("search")
                params = mk()
                t = time.perf_counter()
                queries.search(conn, **params)
                times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out[name] = (statistics.median(times), _p99(times))
    with engine.connect() as conn:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            queries.lineage(conn, f"eip155:1/erc721:{'0x' + '11' * 20}/{rng.randint(1, n_capsules)}", depth=8)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out["lineage (depth 8, both directions)"] = (statistics.median(times), _p99(times))
    return out


def explain_search(engine) -> str:
    """EXPLAIN ANALYZE of the statements one query of each search mix runs (PostgreSQL)."""
    from sqlalchemy import event

    out = []
    for name, mk in search_mixes(random.Random(4)).items():
        params, stmts = mk(), []

        def capture(conn, cursor, statement, parameters, context, executemany):
            stmts.append((statement, parameters))  # noqa: B023 - listened to and removed within this iteration

        event.listen(engine, "before_cursor_execute", capture)
        try:
            with engine.connect() as conn:
                queries.search(conn, **params)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        out.append(f"== {name}: {params}")
        with engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()
            for statement, parameters in stmts:
                cur.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
                out += [r[0] for r in cur.fetchall()]
                out.append("--")
    return "\n".join(out)


def _p99(sorted_ms: list[float]) -> float:
    """The 99th percentile (nearest rank) of sorted samples."""
    return sorted_ms[min(len(sorted_ms) - 1, max(0, math.ceil(0.99 * len(sorted_ms)) - 1))]


@click.command()
@click.option("--pg", default=lambda: os.environ.get("CODEXFIELD_TEST_PG_URL"), help="PostgreSQL URL")
@click.option("--databases", default=None, help="comma list of sqlite, postgresql")
@click.option("--events", default=20000, show_default=True, type=click.IntRange(1))
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--capsules", default=100000, show_default=True, type=click.IntRange(10))
@click.option("--queries", "runs", default=200, show_default=True, type=click.IntRange(1))
@click.option("--check", is_flag=True, help="exit 1 when a target is missed")
@click.option("--p99-ms", default=50.0, show_default=True)
@click.option("--min-rate", default=2000.0, show_default=True, help="events/s")
@click.option(
    "--max-seconds",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(1),
    help="stop (exit 1) when the run takes longer",
)
@click.option("--explain", is_flag=True, help="print EXPLAIN ANALYZE of one query per search mix (PostgreSQL)")
@click.option("--write-docs", is_flag=True)
def main(pg, databases, events, batch, capsules, runs, check, p99_ms, min_rate, max_seconds, explain, write_docs):
    kinds = [k.strip() for k in databases.split(",")] if databases else (["postgresql"] if pg else ["sqlite"])
    if "postgresql" in kinds and not pg:
        raise click.ClickException("postgresql needs --pg URL or $CODEXFIELD_TEST_PG_URL (tools/ensure_postgres.sh)")
    DEADLINE[0] = time.monotonic() + max_seconds

    def hard_stop(_sig, _frame):  # a statement that never returns: stop anyway (finally blocks run)
        raise OutOfTime(f"hard time cap ({max_seconds:.0f} s + 120 s) reached")

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(max_seconds) + 120)
    lines = [
        f"| database | ingest into the loaded catalog (events/s, ranges of {batch} events: in 1 block / "
        f"1 per block) | load {capsules:,} capsules (s) | refresh rankings (s) | query | p50 (ms) | p99 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    missed = []
    load0 = os.getloadavg()[0]
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            eng, drop = engine_for(kind, pg, Path(tmp))
            try:
                load, refresh = load_catalog(eng, capsules)
                click.echo(f"{kind}: loaded {capsules:,} capsules in {load:.1f} s, refresh {refresh:.1f} s", err=True)
                res = bench_search(eng, runs, capsules)
                if explain and kind == "postgresql":
                    click.echo(explain_search(eng), err=True)
                rates = [
                    bench_ingest(eng, events, batch, per_block, chain_id=chain)
                    for per_block, chain in ((batch, 31337), (1, 31338))
                ]
                click.echo(f"{kind}: ingest {rates[0]:,.0f} / {rates[1]:,.0f} events/s", err=True)
            except OutOfTime as exc:
                raise click.ClickException(
                    f"{kind}: {exc} after {time.monotonic() - t_start:.0f} s "
                    f"(--max-seconds {max_seconds:.0f}); nothing measured is reported"
                ) from None
            finally:
                drop()
            missed += [f"{kind} ingest {r:,.0f} events/s < {min_rate:,.0f}" for r in rates if r < min_rate]
            first = True
            for q, (p50, p99) in res.items():
                if p99 >= p99_ms and q.startswith(("full text", "filters", "ranking")):
                    missed.append(f"{kind} {q}: p99 {p99:.1f} ms >= {p99_ms} ms")
                lead = (
                    f"| {kind} | {rates[0]:,.0f} / {rates[1]:,.0f} | {load:.1f} | {refresh:.1f} "
                    if first
                    else "| | | | "
                )
                lines.append(lead + f"| {q} | {p50:.1f} | {p99:.1f} |")
                first = False
    signal.alarm(0)
    cond = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `--capsules {capsules} --events "
        f"{events} --batch {batch} --queries {runs}`, {os.cpu_count()} cores, load average {load0:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end, {time.monotonic() - t_start:.0f} s in all.\n\n"
    )
    table = cond + "\n".join(lines)
    click.echo(table)
    click.echo(
        f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB; "
        f"load average {os.getloadavg()[0]:.1f}",
        err=True,
    )
    if write_docs:
        doc = ROOT / "docs" / "indexer.md"
        body = doc.read_text()
        block = f"<!-- bench:start -->\n{table}\n<!-- bench:end -->"
        doc.write_text(re.sub(r"<!-- bench:start -->.*<!-- bench:end -->", lambda _m: block, body, flags=re.S))
    if check:
        if missed:
            raise click.ClickException("targets missed: " + "; ".join(missed))
        click.echo(f"targets met: search p99 < {p99_ms} ms, ingest >= {min_rate:,.0f} events/s", err=True)


if __name__ == "__main__":
    main()
