"""CodexField quickstart: a dataset capsule, a derived model, metered usage and royalties.

    python examples/quickstart.py            # starts a local anvil, deploys, runs every step
    python examples/quickstart.py --network http://127.0.0.1:8545 --book deployments/ethereum-local.json
                                             # an existing deployment (its test accounts 1-3 act)

Each step is one SDK call (codexfield.sdk.CodexField). tests/integrators/test_sdk_quickstart.py
runs the same `run()` against the test chain and checks every number it prints.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from codexfield import scopes
from codexfield.sdk import CodexField

LICENSE = """license "Quickstart metered" for capsule {capsule}
price 0.002 USDC per MU, upfront 1 USDC
meter llm.tokens.1k
allow inference, research, derivatives
derivatives pay 10%
"""


def run(cf: CodexField, creator: Any, consumer: Any, node: Any, workdir: Path, say=print) -> dict[str, int]:
    """The quickstart steps; returns the ids and amounts it produced."""
    usdc = cf.token("USDC")
    # 0. Test money (local chains only: the test USDC has an open mint).
    cf.test_token("USDC").mint(consumer, cf.units("USDC", 100), sender=consumer)

    # 1. Creator packs a directory and mints it as a dataset capsule.
    data = workdir / "dataset"
    data.mkdir(parents=True, exist_ok=True)
    (data / "train.csv").write_text("x,y\n1,2\n2,4\n3,6\n")
    dataset = cf.mint(data, kind="dataset", sender=creator)
    say(f"dataset capsule {dataset}: {cf.capsule(dataset)['uri']}")

    # 2. Creator publishes metered terms written in LDL.
    terms = cf.publish_terms(LICENSE.format(capsule=dataset), sender=creator)
    say(f"terms {terms}: {cf.licenses.terms(terms).price_per_mu} raw USDC per MU")

    # 3. Consumer buys a credential (the upfront fee is capped at what it read) and funds escrow.
    cred = cf.purchase(terms, sender=consumer)
    cf.deposit("USDC", cf.units("USDC", 10), sender=consumer)
    say(f"credential {cred} for {cf.credential(cred)['holder']}")

    # 4. The node serves from AccessStaking (the meter pays only serving nodes; test CDX as stake).
    stake = cf.staking.params().min_stake
    if cf.token("CDX").balanceOf(node) < stake:
        cf.test_token("CDX").mint(node, stake, sender=node)
    cf.register_node(node)
    # 5. Consumer signs a cumulative voucher for the node; the node ingests it.
    v = cf.voucher(cred, node, mu=500, calls=5, latency_ms=250, node_price_per_mu=1000)
    result = cf.ingest([(v, cf.sign(v, consumer))], sender=node)
    # A replay of the same voucher pays nothing (rejected as NOTHING_NEW in a batch).
    replay = cf.ingest([(v, cf.sign(v, consumer)), (v, cf.sign(v, consumer))], sender=node)
    say(f"ingested {result.applied} voucher, replay rejected: {replay.rejected}")

    # 5. Royalties: propagate the dataset's vault and claim as its owner.
    cf.propagate(dataset, "USDC", sender=node)
    before = usdc.balanceOf(creator)
    claimed = cf.claim(dataset, "USDC", sender=creator)
    say(f"creator claimed {claimed} raw USDC")
    assert usdc.balanceOf(creator) - before == claimed
    return {
        "dataset": dataset,
        "terms": terms,
        "credential": cred,
        "applied": result.applied,
        "replay_applied": replay.applied,
        "claimed": claimed,
        "authorized": int(cf.authorize(cred, consumer, scopes.mask_of(["inference"]))),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    from ape import accounts, networks

    from codexfield import deployments

    parser = argparse.ArgumentParser(description="CodexField quickstart")
    parser.add_argument("--network", default="ethereum:local:foundry", help="ape network choice or RPC URL")
    parser.add_argument("--book", help="address book of an existing deployment with test tokens (default: deploy)")
    args = parser.parse_args(argv)
    with networks.parse_network_choice(args.network):
        admin, creator, consumer, node = accounts.test_accounts[:4]
        if args.book:
            book = deployments.load_file(args.book)
        else:
            from codexfield.deploy import DeployConfig, deploy_system

            book = deploy_system(admin, DeployConfig(test_tokens=True), save=False, log=lambda _m: None).book
        cf = CodexField(book, account=admin)
        with tempfile.TemporaryDirectory() as tmp:
            print(run(cf, creator, consumer, node, Path(tmp)))


if __name__ == "__main__":
    main()
