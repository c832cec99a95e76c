"""Real processes for the gateway chaos tests (run as scripts, SIGKILLed by the tests).

    python gateway_procs.py gateway CONFIG.json   # a node gateway on the test chain (ape, HTTP)
    python gateway_procs.py consumer CONFIG.json  # consumers: call until each has `calls` answers

The consumer side imports no ape: only the SDK ledger and NodeClient, like an integrator's app.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time


def gateway(cfg: dict) -> None:
    from ape import accounts, networks, project

    from codexfield.keepers.base import setup_logging
    from codexfield.node.gateway import Gateway, serve_forever
    from codexfield.node.model import train
    from codexfield.node.store import NodeStore

    setup_logging()  # the node's structured log lines (ingests, rejections) in the test's log file

    with networks.parse_network_choice(cfg["uri"]):
        from ape.contracts import ContractInstance

        # Not `.at()`: on a URI ("custom") network ape may answer a contract type it cached on disk
        # for the same address from an earlier chain (a stale ABI); the project's own types are current.
        contracts = {n: ContractInstance(a, getattr(project, n).contract_type) for n, a in cfg["contracts"].items()}
        model = train(
            ["refund my invoice", "the app crashes", "reset my password", "parcel is late"],
            ["billing", "technical", "account", "shipping"],
        )
        gw = Gateway(
            capsule_id=cfg["capsule"],
            model=model,
            account=accounts.test_accounts[cfg["node_index"]],
            contracts=contracts,
            store=NodeStore(cfg["state"]),
            price_per_mu=cfg["price"],
            max_age_s=cfg.get("max_age_s", 1.0),
            escrow_ttl_s=0.5,
        )
        serve_forever(gw, "127.0.0.1", cfg["port"])


def consumer(cfg: dict) -> None:
    from codexfield.node.client import ChannelOutOfSync, NodeClient, NodeError
    from codexfield.sdk.metering import ConsumerLedger, Domain

    domain = Domain(int(cfg["chain_id"]), cfg["meter"])
    texts = ["my parcel is late", "refund my invoice " * 7, "the app crashes on start", "reset my password"]
    out = open(cfg["results"], "a", buffering=1)
    lock = threading.Lock()

    def one(credential: int, key: str) -> None:
        ledger = ConsumerLedger(os.path.join(cfg["ledger_dir"], f"{credential}.sqlite"), domain, key)

        def answered(cred: int, a: dict) -> None:
            with lock:
                out.write(
                    json.dumps(
                        {"credential": cred, "calls": a["cumulative"]["cumulative_calls"], "replayed": a["replayed"]}
                    )
                    + "\n"
                )
                os.fsync(out.fileno())

        client = NodeClient(cfg["url"], ledger, timeout=5, on_answer=answered)
        rng = random.Random(credential)
        while True:
            try:
                client.resume(credential)  # an unresolved call from before a crash (or a refusal) first
                ack = ledger.last_ack(credential, client.node)
                if (int(ack["cumulative_calls"]) if ack else 0) >= cfg["calls"]:
                    return
                client.invoke(credential, rng.choice(texts))
                client.recovered.clear()
            except NodeError as e:  # node down, or escrow short until the test tops it up
                with lock:
                    out.write(json.dumps({"credential": credential, "refused": e.code}) + "\n")
                time.sleep(0.2)
            except ChannelOutOfSync as e:  # a stuck channel: the test fails on this line
                with lock:
                    out.write(json.dumps({"credential": credential, "stuck": str(e)}) + "\n")
                return

    threads = [threading.Thread(target=one, args=(int(c), k)) for c, k in cfg["consumers"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    {"gateway": gateway, "consumer": consumer}[sys.argv[1]](json.loads(open(sys.argv[2]).read()))
