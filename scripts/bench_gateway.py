"""Benchmark of the node gateway (issue 15): metered calls/s and p50/p99 latency at 1/10/50
concurrent consumers (closed loop) and 50 consumers paced at a target rate (open loop), on a
local anvil, with a trivial model; the metering overhead per call (checks + commit + ack,
measured inside the gateway) is reported apart from the model's time.

    flock /tmp/codexfield-bench.lock python scripts/bench_gateway.py [--seconds 5]
        [--levels 1,10,50,50@550] [--runs 1] [--json] [--write-docs]

Not a test: it prints a table (`--json`: every field; `--write-docs`: the table into
docs/node.md and the figures into the README's gateway sentence, between their
`bench-gateway` markers). The load generator runs in a separate process: every consumer of a
level on one asyncio loop (kept-alive HTTP, one credential and channel each, one shared ledger
file); each call is a real voucher: signed by the SDK's ledger and committed before it is sent,
verified, committed and served by the node, its ack verified and recorded; the gateway's
flusher ingests batches while the load runs (every served call is checked settled on chain at
the end). Runs on loopback only; stops by itself (setup ~30 s on anvil, then `--seconds` per
level).

Columns: calls/s and p50/p99 as the consumers see them (paced rows: from each call's scheduled
start); "node ms/call", the wall time inside `Gateway.invoke_async` (checks, group commit,
model, ack: waiting included), split into the model's own time and the metering overhead (the
rest); the CPU time per call of the gateway process (HTTP, checks, commits, ingest; the ingest
thread's share apart) and of the load generator's process (ledger, signing, HTTP, ack checks);
the machine's 1-minute load average at the end of the level (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Trivial:
    """A trivial text model (constant time): isolates the gateway's own cost."""

    def predict(self, text: str) -> dict:
        return {"label": "ok", "chars": len(text)}


def _consumers(
    url: str, chain_id: int, meter: str, creds: list, seconds: float, ledger_path: str, q, rate: float = 0.0
) -> None:
    """The load generator: every consumer of the level in ONE process, on one event loop, with
    kept-alive HTTP (aiohttp). Each call keeps the consumer's ledger rules: the voucher is
    signed by the SDK's ledger (`ConsumerLedger.begin_call`'s own code) and committed, with the
    call in flight, before it is sent; the node's ack is verified (`verify_ack`: its
    signature, never below the ack before, exactly the voucher's counters) and recorded (the
    call resolved) before the next call. The ledger commits of all consumers are grouped
    (`commit_group`: one transaction, one fsync, per group, in a worker thread).

    `rate` > 0 paces the consumers (open loop): each starts a call every len(creds) / rate
    seconds, and a call's latency counts from its scheduled start (waiting for a late start
    included); 0: each calls again as soon as it has its answer (closed loop)."""
    import asyncio

    import aiohttp

    try:  # the `[speed]` extra, as the gateway: plain json otherwise
        import orjson

        dumps, loads = (lambda o: orjson.dumps(o).decode()), orjson.loads
    except ImportError:
        import json

        dumps, loads = json.dumps, json.loads

    from codexfield.node.client import ChannelOutOfSync, NodeClient, _counters
    from codexfield.sdk.metering import ConsumerLedger, Domain, commit_group, verify_ack, voucher_to_json

    domain = Domain(chain_id, meter)
    ledgers = {cred: ConsumerLedger(ledger_path, domain, key) for cred, key in creds}
    clients = {}
    for cred, ledger in ledgers.items():  # each channel's first call through the SDK's NodeClient
        c = clients[cred] = NodeClient(url, ledger)
        c.invoke(cred, "warm up")  # resume, quote, sign, invoke, verify and record the ack
    import gc

    gc.collect()
    gc.freeze()  # what the warm-ups left is not scanned again (the gateway does the same)
    lat: list[float] = []
    kinds: dict[str, int] = {}
    groups = [0]
    split: tuple[list[float], list[float]] = ([], [])  # ledger (resolve + begin), HTTP + ack check

    async def main() -> float:
        loop = asyncio.get_running_loop()
        queued: list = []
        running = [False]

        async def commit(*ops: tuple) -> list:
            """`ops` (of one consumer) in the next group's transaction, in order."""
            futs = []
            for op in ops:
                futs.append(loop.create_future())
                queued.append((op, futs[-1]))
            if not running[0]:
                running[0] = True
                loop.create_task(committer())
            out = [await f for f in futs]
            for x in out:
                if isinstance(x, Exception):
                    raise x
            return out

        async def committer() -> None:
            try:
                while queued:
                    batch = queued[:]
                    del queued[:]
                    try:
                        results = await loop.run_in_executor(None, commit_group, [op for op, _ in batch])
                    except Exception as exc:  # noqa: BLE001 - handed to the group
                        results = [exc] * len(batch)
                    groups[0] += 1
                    for (_, fut), r in zip(batch, results):
                        fut.set_result(r)
            finally:
                running[0] = False

        conn = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(connector=conn, json_serialize=dumps) as http:
            end = time.monotonic() + seconds

            async def one(cred: int) -> None:
                client, ledger = clients[cred], ledgers[cred]
                node = client.node
                terms = client._terms[cred]
                latency = client._last_latency.get(cred, 0)
                # The last answer's ack is recorded (the call resolved) in the same transaction
                # that begins the next call: one ledger fsync a call (a crash in between leaves
                # the answered call in flight: resumed, the node replays it, charging nothing).
                answered = None
                text = "where is my parcel"
                every = len(creds) / rate if rate > 0 else 0.0
                due = time.perf_counter() + every * (cred % 97) / 97  # spread the paced starts
                while time.monotonic() < end:
                    if every:
                        wait = due - time.perf_counter()
                        if wait > 0:
                            await asyncio.sleep(wait)
                        t0, due = due, due + every
                    else:
                        t0 = time.perf_counter()
                    prev = _counters(terms["ack"])  # verified when it arrived
                    t_begin = time.perf_counter()
                    quote = client._local_quote(cred, text, None)  # the SDK's own MU rule
                    now = int(terms["chain_time"])
                    resolve = [(ledger, "record_ack", (cred, node, answered), {"resolved": True})] if answered else []
                    *_, f = await commit(
                        *resolve,
                        (
                            ledger,
                            "begin_call",
                            (cred, node, text),
                            dict(
                                base=prev,
                                mu=int(quote["mu"]),
                                latency_ms=latency,
                                purpose=int(terms["purpose"]),
                                node_price_per_mu=int(terms["node_price_per_mu"]),
                                deadline=max(int(terms["min_deadline"]) + 60, now + client.deadline_s),
                                issued_at=now,
                            ),
                        ),
                    )
                    body = {
                        "credential_id": str(cred),
                        "input": text,
                        "voucher": voucher_to_json(f.voucher),
                        "signature": "0x" + f.signature.hex(),
                    }
                    t_http = time.perf_counter()
                    split[0].append(t_http - max(t0, t_begin))
                    async with http.post(url + "/invoke", json=body) as r:
                        data = loads(await r.read())
                    if r.status != 200:
                        kinds[data.get("error", str(r.status))] = kinds.get(data.get("error", str(r.status)), 0) + 1
                        return  # the call stays in flight in the ledger (NodeClient.resume would resolve it)
                    got = verify_ack(domain, data["ack"], node=node, credential_id=cred, payer=ledger.payer)
                    if got != f.voucher.counters() or any(g < p for g, p in zip(got, prev)):
                        raise ChannelOutOfSync(f"node acknowledges {got}, the voucher signs {f.voucher.counters()}")
                    t_ack = time.perf_counter()
                    split[1].append(t_ack - t_http)
                    answered = data["ack"]
                    latency = int((t_ack - t_http) * 1000)
                    terms = dict(
                        terms, ack=data["ack"], chain_time=data["chain_time"], min_deadline=data["min_deadline"]
                    )
                    lat.append(time.perf_counter() - t0)  # the answer in hand, its ack verified
                if answered:
                    await commit((ledger, "record_ack", (cred, node, answered), {"resolved": True}))

            t0 = time.monotonic()
            out = await asyncio.gather(*(one(c) for c in ledgers), return_exceptions=True)
            for x in out:
                if isinstance(x, BaseException):
                    kinds[type(x).__name__] = kinds.get(type(x).__name__, 0) + 1
            return time.monotonic() - t0

    print(f"load: {len(creds)} consumers", file=sys.stderr, flush=True)
    cpu0 = time.process_time()
    try:
        import uvloop

        wall = uvloop.run(main())
    except ImportError:
        wall = asyncio.run(main())
    cpu = time.process_time() - cpu0
    q.put(
        {
            "calls": len(lat),
            "wall": wall,
            "lat": lat,
            "errors": sum(kinds.values()),
            "error_kinds": kinds,
            "cpu_s": cpu,
            "ledger_groups": groups[0],
            "split_ms": [round(1000 * statistics.median(x), 1) if x else None for x in split],
            "split_p99_ms": [round(1000 * sorted(x)[int(0.99 * len(x))], 1) if x else None for x in split],
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="load per level (keep the total under a minute)")
    ap.add_argument(
        "--levels",
        default="1,10,50,50@550",
        help="consumer counts; N@R paces N consumers at R calls/s in all (open loop), N alone: closed loop",
    )
    ap.add_argument(
        "--runs", type=int, default=1, help="run every level this many times in turn (1..5): the spread of the figures"
    )
    ap.add_argument("--json", dest="as_json", action="store_true")
    ap.add_argument(
        "--write-docs", action="store_true", help="write the table into docs/node.md and the README's sentence"
    )
    args = ap.parse_args()
    try:
        specs = [(int(x.split("@")[0]), float(x.split("@")[1]) if "@" in x else 0.0) for x in args.levels.split(",")]
    except ValueError:
        ap.error("--levels is a comma-separated list of consumer counts, e.g. 1,10,50,50@500")
    levels = [n for n, _ in specs]
    if any(not 0 <= r <= 5_000 for _, r in specs):
        ap.error("--levels: a paced rate N@R is 0..5000 calls/s")
    if not 1 <= args.runs <= 5:
        ap.error("--runs is 1..5 (the benchmark stops by itself)")
    if not 0 < args.seconds <= 20 or not levels or min(levels) < 1 or max(levels) > 200:
        ap.error("--seconds must be in (0, 20] and each level in 1..200 (the benchmark stops by itself)")

    from ape import accounts, networks, project
    from eth_account import Account
    from eth_utils import keccak

    from codexfield import deployments, scopes
    from codexfield.deploy import DeployConfig, deploy_system
    from codexfield.ldl.terms import Terms
    from codexfield.node.gateway import Gateway, GatewayServer
    from codexfield.node.model import METER_NAME
    from codexfield.node.store import NodeStore
    from codexfield.sdk.metering import Domain

    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    deployments.DEPLOYMENTS_DIR = tmp / "books"
    with networks.parse_network_choice("ethereum:local:foundry"):
        admin, licensor, node = accounts.test_accounts[0], accounts.test_accounts[1], accounts.test_accounts[4]
        book = deploy_system(
            admin, DeployConfig(test_tokens=True, reporters=[accounts.test_accounts[5].address]), log=lambda s: None
        ).book
        c = {n: getattr(project, n).at(a) for n, a in book.contracts.items()}
        usdc = project.MockERC20.at(book.tokens["USDC"]["address"])
        cdx = project.MockERC20.at(book.tokens["CDX"]["address"])
        staking, lm, meter = c["AccessStaking"], c["LicenseManager"], c["UsageMeter"]
        stake = staking.params().min_stake
        cdx.mint(node, stake, sender=admin)
        cdx.approve(staking, stake, sender=node)
        staking.register_node("http://127.0.0.1", 1, b"local\x00\x00\x00", "0x" + "00" * 20, stake, sender=node)
        capsule = int(c["CapsuleRegistry"].mint(2, os.urandom(32), [], [], "", sender=licensor).return_value)
        terms = Terms(
            capsule_id=capsule,
            payment_token=usdc.address,
            price_per_mu=2_000,
            meter=keccak(text=METER_NAME),
            scope=scopes.mask_of(["inference"]),
            revocation=2,
        )
        terms_id = lm.create_terms(terms.as_tuple(), sender=licensor).return_value
        n = max(levels)
        usdc.mint(admin, 10**15, sender=admin)
        usdc.approve(meter, 10**15, sender=admin)
        creds = []
        for _ in range(n):
            a = Account.create()
            cred = int(lm.purchase(terms_id, a.address, 0, sender=admin).return_value)
            meter.deposit(usdc, 10**12, a.address, sender=admin)
            creds.append((cred, a.key.hex()))
        gw = Gateway(
            capsule_id=capsule,
            model=Trivial(),
            account=node,
            contracts=c,
            store=NodeStore(tmp / "node.sqlite"),
            price_per_mu=1_000,
        )
        server = GatewayServer(gw).start()
        domain = Domain.of(meter)
        rows = []
        ctx = mp.get_context("spawn")
        try:
            for run, (level, rate) in ((r, spec) for r in range(1, args.runs + 1) for spec in specs):
                served0, inv0, model0, cpu0, ing0, groups0 = (
                    gw.served,
                    gw.invoke_s,
                    gw.model_s,
                    time.process_time(),
                    gw.ingest_cpu_s,
                    gw._acommit.groups,
                )
                q = ctx.Queue()
                p = ctx.Process(
                    target=_consumers,
                    args=(
                        server.url,
                        domain.chain_id,
                        domain.verifying_contract,
                        creds[:level],
                        args.seconds,
                        str(tmp / "consumers.sqlite"),
                        q,
                        rate,
                    ),
                )
                p.start()
                r = q.get(timeout=args.seconds + 120)
                node_cpu = time.process_time() - cpu0  # the gateway process: HTTP, checks, commits, ingest
                p.join()
                served = gw.served - served0 - level  # minus the warm-up calls
                lat = sorted(r["lat"])
                per_call_ms = 1000 * (gw.invoke_s - inv0) / max(1, gw.served - served0)
                model_ms = 1000 * (gw.model_s - model0) / max(1, gw.served - served0)
                rows.append(
                    {
                        "run": run,
                        "consumers": level,
                        "offered_calls_per_s": rate or None,
                        "calls": r["calls"],
                        "calls_per_s": round(r["calls"] / r["wall"], 1),
                        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
                        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1) if lat else None,
                        "node_invoke_ms": round(per_call_ms, 2),
                        "model_ms": round(model_ms, 3),
                        "metering_overhead_ms": round(per_call_ms - model_ms, 2),
                        "node_cpu_ms_per_call": round(1000 * node_cpu / max(1, gw.served - served0), 2),
                        "ingest_cpu_ms_per_call": round(
                            1000 * (gw.ingest_cpu_s - ing0) / max(1, gw.served - served0), 2
                        ),
                        "client_cpu_ms_per_call": round(1000 * r["cpu_s"] / max(1, r["calls"]), 2),
                        "errors": r["errors"],
                        "error_kinds": r["error_kinds"],
                        "served": served,
                        "node_commit_groups": gw._acommit.groups - groups0,
                        "consumer_ledger_groups": r["ledger_groups"],
                        "consumer_p50_split_ms": dict(zip(("ledger", "http"), r["split_ms"])),
                        "consumer_p99_split_ms": dict(zip(("ledger", "http"), r["split_p99_ms"])),
                        "load_avg_1m": round(os.getloadavg()[0], 2),
                    }
                )
            server.stop(flush=True)
            served_total = gw.served
            settled = sum(int(meter.settled(cr, node, Account.from_key(k).address)[1]) for cr, k in creds)
        finally:
            server.stop(flush=False)
    import importlib.util

    speed = {m: importlib.util.find_spec(m) is not None for m in ("coincurve", "orjson", "uvloop", "sha3")}
    backend = "libsecp256k1 (coincurve)" if speed["coincurve"] else "eth-keys (pure Python)"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report = {
        "rows": rows,
        "settled_calls": settled,
        "served_calls": served_total,
        "seconds_per_level": args.seconds,
        "runs": args.runs,
        "ecc_backend": backend,
        "speed": speed,
        "when": when,
        "cores": os.cpu_count(),
    }
    if args.write_docs:
        write_docs(report)
    if args.as_json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"gateway benchmark ({args.seconds:g} s per level, trivial model, secp256k1: {backend}, "
        f"orjson: {speed['orjson']}, uvloop: {speed['uvloop']}; {settled} of {served_total} calls served "
        "settled on chain)"
    )
    print(table(report))
    print(verdict(report))


COLUMNS = (
    ("consumers", "consumers", "{}"),
    ("calls/s", "calls_per_s", "{:,.0f}"),
    ("p50 ms", "p50_ms", "{:,.0f}"),
    ("p99 ms", "p99_ms", "{:,.0f}"),
    ("node ms/call", "node_invoke_ms", "{:.2f}"),
    ("model ms", "model_ms", "{:.3f}"),
    ("metering ms", "metering_overhead_ms", "{:.2f}"),
    ("node CPU ms/call (ingest)", None, None),
    ("generator CPU ms/call", "client_cpu_ms_per_call", "{:.2f}"),
    ("load avg", "load_avg_1m", "{:.1f}"),
    ("errors", "errors", "{}"),
)


def _who(r: dict) -> str:
    return (
        f"{r['consumers']} @ {r['offered_calls_per_s']:,.0f}/s" if r.get("offered_calls_per_s") else str(r["consumers"])
    )


def table(report: dict) -> str:
    """The report's rows as a Markdown table (the form docs/node.md and the README quote); a
    "run" column first when the levels ran more than once."""
    runs = report.get("runs", 1) > 1
    head = "| " + ("run | " if runs else "") + " | ".join(c for c, _, _ in COLUMNS) + " |"
    sep = "|" + ("---:|" if runs else "") + "|".join("---:" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for r in report["rows"]:
        cells = [str(r.get("run", 1))] if runs else []
        for _, key, fmt in COLUMNS:
            if key == "consumers":
                cells.append(_who(r))
            elif key is None:
                cells.append(f"{r['node_cpu_ms_per_call']:.2f} ({r['ingest_cpu_ms_per_call']:.2f})")
            else:
                cells.append(fmt.format(r[key]) if r[key] is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(report: dict) -> str:
    """The README's one-sentence figures."""
    rows = [r for r in report["rows"] if r.get("run", 1) == 1]

    def j(key: str, fmt: str) -> str:
        return " / ".join(fmt.format(r[key]) for r in rows)

    return (
        f"{j('calls_per_s', '{:,.0f}')} calls/s at {' / '.join(_who(r) for r in rows)} consumers, p99 "
        f"{j('p99_ms', '{:,.0f}')} ms; metering overhead {j('metering_overhead_ms', '{:.2f}')} ms a call "
        f"(waiting included) against {max(r['model_ms'] for r in rows):.3f} ms of model time; "
        f"{j('node_cpu_ms_per_call', '{:.2f}')} ms of gateway CPU and {j('client_cpu_ms_per_call', '{:.2f}')} ms "
        f"of load-generator CPU a call; load average {j('load_avg_1m', '{:.1f}')} "
        f"({report['when']}, {report['cores']} cores). {verdict(report)}"
    )


def _met(r: dict) -> bool:
    return r["consumers"] >= 50 and r["calls_per_s"] >= 500 and r["p99_ms"] < 100


def verdict(report: dict) -> str:
    """Whether a 50-consumer row of each run reached the issue's target."""
    head = "The target (≥ 500 metered calls/s with p99 < 100 ms at 50 consumers) is "
    runs = report.get("runs", 1)
    if runs == 1:
        met = [r for r in report["rows"] if _met(r)]
        return head + ("met in this run" if met else "not met in this run") + (f" ({_who(met[0])})." if met else ".")
    by_run = {n: [r for r in report["rows"] if r.get("run", 1) == n] for n in range(1, runs + 1)}
    ok = [n for n, rows in by_run.items() if any(_met(r) for r in rows)]
    parts = []
    for n, rows in by_run.items():
        fifty = [
            f"{_who(r)}: {r['calls_per_s']:,.0f}/s p99 {r['p99_ms']:,.0f} ms" for r in rows if r["consumers"] >= 50
        ]
        parts.append(f"run {n}: " + (", ".join(fifty) or "no 50-consumer level"))
    return head + f"met in {len(ok)} of {runs} runs ({'; '.join(parts)})."


def _replace(path: Path, tag: str, text: str) -> None:
    body = path.read_text()
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    if begin not in body or end not in body:
        raise SystemExit(f"{path}: no {begin} ... {end} markers to write the figures between")
    head, rest = body.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + begin + text + end + tail)


def write_docs(report: dict) -> None:
    """Write the figures into docs/node.md (the table) and the README's gateway sentence."""
    root = Path(__file__).resolve().parents[1]
    block = (
        f"\n\n{table(report)}\n\n({report['when']}; {report['seconds_per_level']:g} s per level; "
        f"{report['settled_calls']} of {report['served_calls']} calls served settled on chain; "
        f"secp256k1: {report['ecc_backend']}; printed by `scripts/bench_gateway.py --write-docs`)\n\n"
        f"{verdict(report)}\n\n"
    )
    _replace(root / "docs" / "node.md", "bench-gateway", block)
    readme = textwrap.fill(summary(report), width=98, initial_indent="  ", subsequent_indent="  ")
    _replace(root / "README.md", "bench-gateway", "\n" + readme + "\n  ")


if __name__ == "__main__":
    main()
