"""The CodexField demo: the whole grid on a local chain, end to end, with real parts only.

`run_flow(actors, calls=100, workdir=...)` is the flow; `scripts/demo.py` (`make demo`, i.e.
`ape run demo --network ethereum:local:foundry`) runs it with 100 calls and prints the
summary; `tests/integration/test_flow.py` runs it smaller and checks every balance to the wei.

1. deploy and wire everything (`deploy_system(test_tokens=True)`), three reporters;
2. DIDs: the creators publish a profile attribute, the consumer adds a `sigAuth` hot key;
3. the dataset capsule (`demo/dataset`: 360 labelled tickets) is packed and minted, with an
   LDL licence that allows derivatives for an upfront fee and a 20 % share;
4. the model owner buys a derivative credential, trains a naive Bayes classifier on the
   dataset, packs the model directory and mints it with the dataset as parent (20 %);
5. the model's metered licence is published (LDL); the consumer buys a credential and
   deposits escrow;
6. a node starts the HTTP gateway on 127.0.0.1, registers in AccessStaking with stake, and
   serves `calls` real invocations for signed cumulative vouchers (hot key), ingested in batches;
7. the settler keeper propagates royalties; the finalizer sweeps protocol fees into the PoA
   pool; three probers probe `/health` during the epoch and report it; the epoch is finalized;
8. everyone claims; the summary says who earned what.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from codexfield import scopes
from codexfield.deploy import DeployConfig, deploy_system
from codexfield.did import SIG_AUTH, attribute_name, did_for
from codexfield.keepers.base import JsonFormatter, KeeperState
from codexfield.keepers.finalizer import Finalizer
from codexfield.keepers.prober import Prober
from codexfield.keepers.settler import Settler
from codexfield.ldl import compile_ldl
from codexfield.ldl.chain import publish_terms, token_list_for
from codexfield.manifest import pack, write_manifest
from codexfield.node.client import NodeClient
from codexfield.node.gateway import Gateway, GatewayServer
from codexfield.node.model import METER_NAME, read_csv, train_from_csv
from codexfield.node.store import NodeStore
from codexfield.sdk.metering import ConsumerLedger, Domain
from codexfield.store import open_store

ROOT = Path(__file__).resolve().parents[1]
DATASET_DIR = ROOT / "demo" / "dataset"
USDC = 10**6
CDX = 10**18
DAY = 86_400

DATASET_LICENSE = """license "Support tickets: train your own models" for capsule {capsule}
price 0 USDC per MU, upfront {upfront} USDC
meter dataset.records
perpetual
allow research, commercial, derivatives
derivatives pay 20%
irrevocable
text 0x{text}
"""

MODEL_LICENSE = """license "Ticket router: metered inference" for capsule {capsule}
price {price} USDC per MU, upfront {upfront} USDC
meter {meter}
duration 30 days; quota 1_000_000 MU
allow inference, research, commercial
revocable by arbiter
text 0x{text}
"""


@dataclass
class Actors:
    deployer: Any
    dataset_owner: Any
    model_owner: Any
    consumer: Any
    node: Any
    reporters: list[Any]

    @classmethod
    def from_test_accounts(cls, accounts: Any) -> Actors:
        a = list(accounts)
        return cls(
            deployer=a[0], dataset_owner=a[1], model_owner=a[2], consumer=a[3], node=a[4], reporters=[a[5], a[8], a[9]]
        )


@dataclass
class Prices:
    dataset_upfront: str = "5"  # USDC
    model_upfront: str = "1"
    model_price: str = "0.002"  # USDC per MU (licence)
    node_price: int = 1_000  # token units per MU (0.001 USDC)
    deposit: int = 20 * USDC
    stake: int = 1_000 * CDX


@dataclass
class FlowResult:
    book: Any
    contracts: dict[str, Any]
    usdc: Any
    dataset_id: int
    model_id: int
    dataset_terms: int
    model_terms: int
    derivative_credential: int
    credential: int
    hot_key: str
    node_url: str
    calls: int
    mu_per_call: list[int] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    model_accuracy: float = 0.0
    served_epoch: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    claimed: dict[str, int] = field(default_factory=dict)
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    scores: list[dict] = field(default_factory=list)
    fees_swept: int = 0
    indexer_url: str | None = None
    stake: int = 0
    dataset_cid: str = ""
    model_cid: str = ""


def _set_time(chain: Any, ts: int) -> None:
    """Mine a block at `ts` (anvil): epochs are an hour, the demo does not wait for them."""
    if ts > chain.blocks.head.timestamp:
        chain.mine(timestamp=ts)


def sample_texts(n: int) -> list[str]:
    """`n` real inputs: the dataset's tickets, rephrased a little so they are not verbatim."""
    texts, _ = read_csv(DATASET_DIR / "tickets.csv")
    out = []
    for i in range(n):
        t = texts[(i * 37) % len(texts)]
        out.append(t if i % 3 else t.replace("Please", "Could you please"))
    return out


def run_flow(
    actors: Actors,
    *,
    calls: int = 100,
    workdir: str | Path,
    log: Callable[[str], None] = print,
    prices: Prices | None = None,
    probe_rounds: int = 4,
    max_age_s: float = 2.0,
) -> FlowResult:
    """Run the whole flow (see the module docstring); node and keeper logs go to WORKDIR/keepers.log."""
    prices = prices or Prices()
    work = Path(workdir)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    log_handler = _file_log(work / "keepers.log")
    try:
        return _run_flow(actors, calls, work, log, prices, probe_rounds, max_age_s, t_start, timings)
    finally:
        root = logging.getLogger("codexfield")
        root.removeHandler(log_handler)
        root.propagate = True
        log_handler.close()


def _file_log(path: Path) -> logging.Handler:
    """The node's and keepers' structured JSON lines go to `path` during the flow."""
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("codexfield")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    return handler


def _run_flow(
    actors: Actors,
    calls: int,
    work: Path,
    log: Callable[[str], None],
    prices: Prices,
    probe_rounds: int,
    max_age_s: float,
    t_start: float,
    timings: dict[str, float],
) -> FlowResult:
    from ape import chain

    def lap(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 2)
        return time.perf_counter()

    # 1. Deploy ----------------------------------------------------------------------------
    t = time.perf_counter()
    log("[1/8] deploying and wiring the contracts")
    system = deploy_system(
        actors.deployer,
        DeployConfig(test_tokens=True, reporters=[r.address for r in actors.reporters]),
        log=lambda s: None,
    )
    book, c = system.book, system.contracts
    identity, registry, lm = system.identity, system.registry, system.licenses
    router, staking, meter = system.router, system.staking, system.meter
    usdc, cdx = system.usdc, system.cdx
    tokens = token_list_for(book)
    deployer = actors.deployer
    t = lap("deploy", t)

    # 2. DIDs ------------------------------------------------------------------------------
    log("[2/8] DIDs: creator profiles, the consumer's sigAuth hot key")
    for who, label in ((actors.dataset_owner, "dataset curator"), (actors.model_owner, "model builder")):
        identity.setAttribute(
            who.address,
            attribute_name("did/svc/CodexFieldProfile"),
            f"codexfield:{label}".encode(),
            365 * DAY,
            sender=who,
        )
    hot = Account.create()
    identity.addDelegate(actors.consumer.address, SIG_AUTH, hot.address, 30 * DAY, sender=actors.consumer)
    assert identity.validDelegate(actors.consumer.address, SIG_AUTH, hot.address)
    t = lap("dids", t)

    # 3. Dataset capsule -------------------------------------------------------------------
    log("[3/8] dataset capsule: pack, mint, licence")
    store = open_store(str(work / "store"))
    ds_dir = work / "dataset"
    shutil.copytree(DATASET_DIR, ds_dir)
    ds = pack(ds_dir, creator=did_for(actors.dataset_owner.address, chain.chain_id))
    write_manifest(ds, ds_dir / "capsule.manifest.json")
    store.put(ds.canonical)
    dataset_id = registry.mint(ds.kind_id, ds.content_hash, [], [], "", sender=actors.dataset_owner).return_value
    ds_lic = compile_ldl(
        DATASET_LICENSE.format(capsule=dataset_id, upfront=prices.dataset_upfront, text="d5" * 32),
        chain_id=chain.chain_id,
        token_list=tokens,
    )
    dataset_terms = publish_terms(lm, ds_lic.terms, actors.dataset_owner)

    # 4. Derivative credential, training, model capsule --------------------------------------
    log("[4/8] model: derivative credential, training, pack, mint with the dataset as parent (20%)")
    ds_upfront = ds_lic.terms.upfront_fee
    usdc.mint(actors.model_owner, ds_upfront, sender=deployer)
    usdc.approve(lm, ds_upfront, sender=actors.model_owner)
    deriv_cred = lm.purchase(dataset_terms, actors.model_owner, ds_upfront, sender=actors.model_owner).return_value
    model = train_from_csv(ds_dir / "tickets.csv")
    model_dir = work / "model"
    model.save(model_dir, parent_capsule=dataset_id, creator=did_for(actors.model_owner.address, chain.chain_id))
    md = pack(model_dir)
    write_manifest(md, model_dir / "capsule.manifest.json")
    store.put(md.canonical)
    model_id = registry.mint(
        md.kind_id, md.content_hash, [(dataset_id, 2_000)], [deriv_cred], "", sender=actors.model_owner
    ).return_value
    m_lic = compile_ldl(
        MODEL_LICENSE.format(
            capsule=model_id, price=prices.model_price, upfront=prices.model_upfront, meter=METER_NAME, text="a1" * 32
        ),
        chain_id=chain.chain_id,
        token_list=tokens,
    )
    model_terms = publish_terms(lm, m_lic.terms, actors.model_owner)
    t = lap("capsules", t)

    # 5. Consumer: credential + escrow ---------------------------------------------------------
    log("[5/8] consumer: buys a credential, deposits escrow")
    m_upfront = m_lic.terms.upfront_fee
    usdc.mint(actors.consumer, m_upfront + prices.deposit, sender=deployer)
    usdc.approve(lm, m_upfront, sender=actors.consumer)
    credential = lm.purchase(model_terms, actors.consumer, m_upfront, sender=actors.consumer).return_value
    usdc.approve(meter, prices.deposit, sender=actors.consumer)
    meter.deposit(usdc, prices.deposit, actors.consumer, sender=actors.consumer)

    # 6. Node: gateway, registration ----------------------------------------------------------
    log("[6/8] node: gateway on 127.0.0.1, stake, registration")
    cdx.mint(actors.node, prices.stake, sender=deployer)
    gateway = Gateway(
        capsule_id=model_id,
        model=model,
        account=actors.node,
        contracts=c,
        store=NodeStore(work / "node" / "state.sqlite"),
        price_per_mu=prices.node_price,
        batch_size=32,
        max_age_s=max_age_s,
    )
    server = GatewayServer(gateway, "127.0.0.1", 0).start()
    settler = finalizer = None
    try:
        gateway.ensure_registered(server.url, prices.stake, services=1, region="local")
        genesis, epoch_len = int(staking.genesis()), int(staking.epoch_length())
        window = int(staking.params().report_window)
        # Stake counts from the epoch after registration: serve in the next epoch.
        served_epoch = int(staking.current_epoch()) + 1
        _set_time(chain, genesis + served_epoch * epoch_len + 1)
        probers = [
            Prober(staking, r, KeeperState(work / "keepers" / f"prober-{i}.sqlite"), probes=3, timeout=2.0)
            for i, r in enumerate(actors.reporters)
        ]
        settler = Settler(
            router,
            registry,
            deployer,
            KeeperState(work / "keepers" / "settler.sqlite"),
            start_block=book.block,
            batch_size=64,
        )
        finalizer = Finalizer(staking, meter, deployer, KeeperState(work / "keepers" / "finalizer.sqlite"), page=64)
        t = lap("setup", t)

        # 7. Serve ------------------------------------------------------------------------------
        log(f"[7/8] serving {calls} invocations over HTTP ({server.url})")
        ledger = ConsumerLedger(
            work / "consumer" / "ledger.sqlite", Domain.of(meter), hot.key, payer=actors.consumer.address
        )
        client = NodeClient(server.url, ledger)
        before = balances(usdc, c, actors, dataset_id, model_id)
        texts = sample_texts(calls)
        preds, mus = [], []
        every = max(1, calls // max(1, probe_rounds))
        for i, text in enumerate(texts):
            out = client.invoke(credential, text)
            preds.append({"input": text, **out["result"]})
            mus.append(int(out["mu"]))
            if i % every == 0:
                for p in probers:
                    p.probe()
        gateway.flush_now()
        t = lap("serve", t)

        # 8. Keepers ----------------------------------------------------------------------------
        log("[8/8] keepers: settle royalties, sweep fees, probe + report, finalize; claims")
        settler.run_once()
        fees = int(meter.fee_balance(usdc))
        finalizer.run_once()  # sweeps the fees into this epoch's reward pool
        _set_time(chain, genesis + (served_epoch + 1) * epoch_len + 60)  # epoch over, report window open
        for p in probers:
            p.report()
        _set_time(chain, genesis + (served_epoch + 1) * epoch_len + window + 1)  # window closed
        finalized = finalizer.run_once()
        assert served_epoch in finalized or int(staking.next_epoch()) > served_epoch, "the served epoch is final"
        settler.run_once()
        t = lap("keepers", t)
    finally:
        server.stop(flush=True)

    # Claims (pull payments).
    claimed = {
        "dataset_owner": int(
            router.claim(dataset_id, usdc, actors.dataset_owner, sender=actors.dataset_owner).return_value
        ),
        "model_owner": int(router.claim(model_id, usdc, actors.model_owner, sender=actors.model_owner).return_value),
        "node_usage": int(meter.claim_node(usdc, actors.node, sender=actors.node).return_value),
    }
    reward = int(staking.claimable(actors.node))
    claimed["node_rewards"] = int(staking.claim_rewards(actors.node, sender=actors.node).return_value) if reward else 0
    after = balances(usdc, c, actors, dataset_id, model_id)
    scores = node_scores(staking, actors.node.address)

    # Indexer hook ------------------------------------------------------------------------------
    # >>> INDEXER HOOK: `codexfield.indexer` (written in parallel) indexes every event from
    # >>> `book.block` here and serves its HTTP API; the summary prints its URL when available.
    indexer_url = run_indexer_hook(book, work, log)

    timings["total"] = round(time.perf_counter() - t_start, 2)
    return FlowResult(
        book=book,
        contracts=c,
        usdc=usdc,
        dataset_id=int(dataset_id),
        model_id=int(model_id),
        dataset_terms=int(dataset_terms),
        model_terms=int(model_terms),
        derivative_credential=int(deriv_cred),
        credential=int(credential),
        hot_key=hot.address,
        node_url=server.url,
        calls=calls,
        mu_per_call=mus,
        predictions=preds,
        model_accuracy=float(model.metrics.get("accuracy", 0.0)),
        served_epoch=served_epoch,
        timings=timings,
        claimed=claimed,
        before=before,
        after=after,
        scores=scores,
        fees_swept=fees,
        indexer_url=indexer_url,
        dataset_cid=ds.cid,
        model_cid=md.cid,
        stake=prices.stake,
    )


def run_indexer_hook(book: Any, work: Path, log: Callable[[str], None]) -> str | None:
    """INDEXER HOOK: when `codexfield.indexer` exists, index the demo's chain and return its
    API URL. The indexer is written by another helper; until it lands this returns None."""
    try:
        import codexfield.indexer as indexer  # noqa: F401
    except ImportError:
        return None
    run = getattr(indexer, "demo_hook", None)
    if run is None:
        log("indexer: codexfield.indexer has no demo_hook(book, workdir) yet; skipped")
        return None
    try:
        return run(book, work)
    except Exception as exc:  # the demo must not fail because of the indexer
        log(f"indexer hook failed: {exc}")
        return None


def balances(usdc: Any, c: dict[str, Any], actors: Actors, dataset_id: int, model_id: int) -> dict[str, int]:
    router, meter, staking = c["RoyaltyRouter"], c["UsageMeter"], c["AccessStaking"]
    return {
        "escrow": int(meter.escrow(actors.consumer, usdc)),
        "vault_dataset": int(router.vault(dataset_id, usdc)),
        "vault_model": int(router.vault(model_id, usdc)),
        "claimable_dataset": int(router.claimable(dataset_id, usdc)),
        "claimable_model": int(router.claimable(model_id, usdc)),
        "node_balance": int(meter.node_balance(actors.node, usdc)),
        "fee_balance": int(meter.fee_balance(usdc)),
        "staking_usdc": int(usdc.balanceOf(staking)),
        "wallet_dataset_owner": int(usdc.balanceOf(actors.dataset_owner)),
        "wallet_model_owner": int(usdc.balanceOf(actors.model_owner)),
        "wallet_node": int(usdc.balanceOf(actors.node)),
        "wallet_consumer": int(usdc.balanceOf(actors.consumer)),
    }


def node_scores(staking: Any, node: str) -> list[dict]:
    """Every `EpochScored` of `node` (epoch, quality, reliability, weight, strikes)."""
    from ape import chain

    out = []
    for ev in staking.EpochScored.range(0, chain.blocks.head.number + 1):
        if str(ev.node).lower() == node.lower():
            out.append(
                {
                    "epoch": int(ev.epoch),
                    "quality": int(ev.quality),
                    "reliability": int(ev.reliability),
                    "weight": int(ev.weight),
                    "strikes": int(ev.strikes),
                }
            )
    return out


def _units(v: int, decimals: int = 6) -> str:
    return f"{v / 10**decimals:,.6f}"


def print_summary(r: FlowResult, actors: Actors, console: Any = None) -> None:
    """The demo's closing report (rich tables)."""
    from rich.console import Console
    from rich.table import Table

    from codexfield.poa import WAD

    console = console or Console()
    lm, registry = r.contracts["LicenseManager"], r.contracts["CapsuleRegistry"]
    chain_id = r.book.chain_id
    reg = r.contracts["CapsuleRegistry"].address

    cat = Table(title="Catalog", show_lines=False)
    for col in ("capsule", "kind", "owner (DID)", "content (CID)", "licence"):
        cat.add_column(col, overflow="fold")
    ds_terms, m_terms = lm.terms(r.dataset_terms), lm.terms(r.model_terms)
    cat.add_row(
        f"#{r.dataset_id} eip155:{chain_id}/erc721:{reg}/{r.dataset_id}",
        "dataset",
        did_for(actors.dataset_owner.address, chain_id),
        r.dataset_cid,
        f"terms {r.dataset_terms}: upfront {_units(ds_terms.upfront_fee)} USDC, derivatives pay "
        f"{ds_terms.derivative_share_bps / 100:.0f}%",
    )
    cat.add_row(
        f"#{r.model_id} eip155:{chain_id}/erc721:{reg}/{r.model_id}",
        "model",
        did_for(actors.model_owner.address, chain_id),
        r.model_cid,
        f"terms {r.model_terms}: {_units(m_terms.price_per_mu)} USDC/MU + upfront "
        f"{_units(m_terms.upfront_fee)} USDC; allows {', '.join(scopes.names_of(int(m_terms.scope)))}",
    )
    console.print(cat)
    parents = registry.parents(r.model_id)
    console.print(
        f"Lineage: model #{r.model_id} ← "
        + ", ".join(
            f"dataset #{p.capsule_id} ({p.share_bps / 100:.0f}% of all revenue, via derivative credential "
            f"#{r.derivative_credential})"
            for p in parents
        )
    )

    total_mu = sum(r.mu_per_call)
    labels: dict[str, int] = {}
    for p in r.predictions:
        labels[p["label"]] = labels.get(p["label"], 0) + 1
    console.print(
        f"Usage: {r.calls} invocations over HTTP at {r.node_url}, {total_mu} MU "
        f"({METER_NAME}), credential #{r.credential}, vouchers signed by the hot key {r.hot_key} "
        f"(sigAuth delegate); predictions {labels}; model held-out accuracy {r.model_accuracy:.2%}"
    )
    for p in r.predictions[:3]:
        console.print(f"  “{p['input'][:70]}” → {p['label']} ({p['confidence']:.3f})")

    earn = Table(title="Who earned what (USDC)")
    earn.add_column("party")
    earn.add_column("amount", justify="right")
    earn.add_column("from")
    b, a = r.before, r.after
    earn.add_row(
        "dataset owner",
        _units(r.claimed["dataset_owner"]),
        "upfront of the derivative credential + 20% of the model's revenue",
    )
    earn.add_row("model owner", _units(r.claimed["model_owner"]), "consumer's upfront + 80% of metered licence revenue")
    earn.add_row("node", _units(r.claimed["node_usage"]), "node price per MU (after the protocol fee)")
    earn.add_row("node (PoA reward)", _units(r.claimed["node_rewards"]), f"epoch {r.served_epoch} reward pool")
    earn.add_row("protocol fee", _units(r.fees_swept), "2% of every metered charge → PoA reward pool")
    earn.add_row(
        "consumer spent (escrow)", _units(b["escrow"] - a["escrow"]), f"{total_mu} MU × (licence + node price)"
    )
    console.print(earn)

    sc = Table(title="Proof of Access", caption=f"node {actors.node.address}, stake {r.stake / 10**18:,.0f} CDX")
    for col in ("epoch", "quality", "reliability", "weight", "strikes"):
        sc.add_column(col, justify="right")
    for s in r.scores:
        sc.add_row(
            str(s["epoch"]),
            f"{s['quality'] / WAD:.4f}",
            f"{s['reliability'] / WAD:.4f}",
            f"{s['weight']:.3e}",
            str(s["strikes"]),
        )
    console.print(sc)
    if r.indexer_url:
        console.print(f"Indexer API: {r.indexer_url}")
    else:
        console.print("Indexer: not available in this build (hook: codexfield.demo.run_indexer_hook)")
    console.print("Timings (s): " + ", ".join(f"{k} {v}" for k, v in r.timings.items()))
