"""A deployed, wired grid with one model capsule, its licence, a funded consumer credential
and a node gateway helper, for the gateway and keeper tests (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import os

import pytest
from eth_utils import keccak

from codexfield import deployments, scopes
from codexfield.ldl.terms import Terms
from codexfield.node.gateway import Gateway, GatewayServer
from codexfield.node.model import METER_NAME, train
from codexfield.node.store import NodeStore
from codexfield.sdk.metering import Domain

from operate_helpers import DEPOSIT, LICENSE_PRICE, NODE_PRICE
from support.system import deploy


class Grid:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture(scope="module")
def grid(project, accounts, admin, licensor, consumer, reporter, node, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(deployments, "DEPLOYMENTS_DIR", tmp_path_factory.mktemp("books"))
    reporters = [reporter, accounts[8], accounts[9]]
    try:
        system = deploy(admin, reporters=reporters, save=True)
    finally:
        mp.undo()
    c, usdc, cdx = system.contracts, system.usdc, system.cdx
    registry, lm, meter = system.registry, system.licenses, system.meter
    capsule = registry.mint(2, os.urandom(32), [], [], "", sender=licensor).return_value
    terms = Terms(
        capsule_id=capsule,
        payment_token=usdc.address,
        price_per_mu=LICENSE_PRICE,
        meter=keccak(text=METER_NAME),
        scope=scopes.mask_of(["inference", "research"]),
        revocation=2,
    )
    terms_id = lm.create_terms(terms.as_tuple(), sender=licensor).return_value
    credential = lm.purchase(terms_id, consumer, 0, sender=consumer).return_value
    usdc.mint(consumer, DEPOSIT, sender=admin)
    usdc.approve(meter, DEPOSIT, sender=consumer)
    meter.deposit(usdc, DEPOSIT, consumer, sender=consumer)
    staking = system.staking  # the meter pays only serving nodes: `node` bonds the minimum stake
    stake = staking.params().min_stake
    cdx.mint(node, stake, sender=admin)
    cdx.approve(staking, stake, sender=node)
    staking.register_node("http://127.0.0.1", 1, b"local\x00\x00\x00", "0x" + "00" * 20, stake, sender=node)
    model = train(
        ["refund my invoice", "the app crashes", "reset my password", "parcel is late"],
        ["billing", "technical", "account", "shipping"],
    )
    return Grid(
        system=system,
        book=system.book,
        c=c,
        usdc=usdc,
        cdx=cdx,
        capsule=int(capsule),
        terms_id=int(terms_id),
        credential=int(credential),
        model=model,
        domain=Domain.of(meter),
        reporters=reporters,
    )


@pytest.fixture
def start_gateway(grid, node, tmp_path):
    """Closure: start a gateway (new or on an existing state file) on 127.0.0.1; stopped at teardown."""
    servers = []

    def _start(state=None, **kw):
        store = NodeStore(state or tmp_path / "node.sqlite")
        gw = Gateway(
            capsule_id=grid.capsule,
            model=grid.model,
            account=node,
            contracts=grid.c,
            store=store,
            price_per_mu=NODE_PRICE,
            max_age_s=kw.pop("max_age_s", 3_600),
            **kw,
        )
        server = GatewayServer(gw).start(flusher=False)
        servers.append(server)
        return server

    yield _start
    for s in servers:
        s.stop(flush=False)
