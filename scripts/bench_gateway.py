"""Benchmark of the node gateway (issue 15): metered calls/s and p50/p99 latency at 1/10/50
concurrent consumers, on a local anvil, with a trivial model; the metering overhead per call
(checks + commit + ack, measured inside the gateway) is reported apart from the model's time.

    python scripts/bench_gateway.py [--seconds 6] [--levels 1,10,50]

Not a test: it prints a table (and `--json`). The consumers run in a separate process (one
thread per consumer, each its own credential, ledger and keep-alive HTTP session); each call is
a real voucher: signed, verified, committed, served, acknowledged; vouchers are ingested in
batches by the gateway's flusher while the load runs. Runs on loopback only; stops by itself
(setup ~40 s on anvil, then `--seconds` per level).

Columns: calls/s and p50/p99 as the consumers see them; "node ms/call", the wall time inside
`Gateway.invoke` (checks, group commit, model, ack: waiting included), split into the model's
own time and the metering overhead (the rest); "node cpu ms" and "client cpu ms", the CPU
time per call of the gateway process (HTTP, checks, commits, ingest) and of the consumers'
process (ledger, signing, HTTP), with the ingest thread's share of the node's apart ("ingest"):
on a machine to itself, 1000 / node cpu ms bounds one gateway process's calls/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Trivial:
    """A trivial text model (constant time): isolates the gateway's own cost."""

    def predict(self, text: str) -> dict:
        return {"label": "ok", "chars": len(text)}


def _consumers(url: str, chain_id: int, meter: str, creds: list, seconds: float, ledger_dir: str, q) -> None:
    import requests

    from codexfield.node.client import NodeClient
    from codexfield.sdk.metering import ConsumerLedger, Domain

    domain = Domain(chain_id, meter)
    lat: list[float] = []
    errors = [0]
    kinds: dict[str, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(len(creds) + 1)

    def run(cred: int, key: str) -> None:
        http = requests.Session()
        http.trust_env = False  # loopback: skip the proxy lookup requests does on every call
        client = NodeClient(url, ConsumerLedger(os.path.join(ledger_dir, f"{cred}.sqlite"), domain, key), session=http)
        client.invoke(cred, "warm up")  # first call quotes; later ones take the terms from the last answer
        start.wait()
        mine = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                client.invoke(cred, "where is my parcel")
                mine.append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001 - counted, by kind
                with lock:
                    errors[0] += 1
                    kinds[getattr(exc, "code", type(exc).__name__)] = (
                        kinds.get(getattr(exc, "code", type(exc).__name__), 0) + 1
                    )
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=run, args=c) for c in creds]
    for t in threads:
        t.start()
    start.wait()
    print(f"load: {len(creds)} consumers", file=sys.stderr, flush=True)
    t0, cpu0 = time.monotonic(), time.process_time()
    for t in threads:
        t.join()
    q.put(
        {
            "calls": len(lat),
            "wall": time.monotonic() - t0,
            "lat": lat,
            "errors": errors[0],
            "error_kinds": kinds,
            "cpu_s": time.process_time() - cpu0,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="load per level (keep the total under a minute)")
    ap.add_argument("--levels", default="1,10,50")
    ap.add_argument("--json", dest="as_json", action="store_true")
    args = ap.parse_args()
    try:
        levels = [int(x) for x in args.levels.split(",")]
    except ValueError:
        ap.error("--levels is a comma-separated list of consumer counts, e.g. 1,10,50")
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
            for level in levels:
                served0, inv0, model0, cpu0, ing0 = (
                    gw.served,
                    gw.invoke_s,
                    gw.model_s,
                    time.process_time(),
                    gw.ingest_cpu_s,
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
                        str(tmp),
                        q,
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
                        "consumers": level,
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
                    }
                )
            server.stop(flush=True)
            served_total = gw.served
            settled = sum(int(meter.settled(cr, node, Account.from_key(k).address)[1]) for cr, k in creds)
        finally:
            server.stop(flush=False)
    import importlib.util

    speed = {m: importlib.util.find_spec(m) is not None for m in ("coincurve", "orjson", "uvloop")}
    backend = "libsecp256k1 (coincurve)" if speed["coincurve"] else "eth-keys (pure Python)"
    if args.as_json:
        print(
            json.dumps(
                {
                    "rows": rows,
                    "settled_calls": settled,
                    "served_calls": served_total,
                    "seconds_per_level": args.seconds,
                    "ecc_backend": backend,
                    "speed": speed,
                },
                indent=2,
            )
        )
        return
    print(
        f"gateway benchmark ({args.seconds:g} s per level, trivial model, secp256k1: {backend}, "
        f"orjson: {speed['orjson']}, uvloop: {speed['uvloop']}; {settled} of {served_total} calls served "
        "settled on chain)"
    )
    print(
        f"{'consumers':>9} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'node ms/call':>12} {'model ms':>8} "
        f"{'metering ms':>11} {'node cpu ms':>11} {'(ingest)':>8} {'client cpu ms':>13} {'errors':>6}"
    )
    for r in rows:
        print(
            f"{r['consumers']:>9} {r['calls_per_s']:>8} {r['p50_ms']:>7} {r['p99_ms']:>7} {r['node_invoke_ms']:>12} "
            f"{r['model_ms']:>8} {r['metering_overhead_ms']:>11} {r['node_cpu_ms_per_call']:>11} "
            f"{r['ingest_cpu_ms_per_call']:>8} "
            f"{r['client_cpu_ms_per_call']:>13} {r['errors']:>6} {r['error_kinds'] or ''}"
        )


if __name__ == "__main__":
    main()
