"""Session fixtures: role-named actors and deploy closures for the CodexField contracts.

Each contract area adds its own fixtures in its test modules; what every area shares is here:
the actors, single-contract deploy closures, and `system`, the whole system as codexfield.deploy
wires it (a `support.system.System`). Builders (terms, vouchers, signers) are in tests/support/.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from support.system import System, deploy

settings.register_profile(
    "ci",
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def creator(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def licensor(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def consumer(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def node(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def reporter(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def arbiter(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def deploy_token(project, admin):
    """Closure: deploy a MockERC20 (`deploy_token("USDC", 6)`)."""

    def _deploy(symbol: str = "USDC", decimals: int = 6):
        return admin.deploy(project.MockERC20, f"Mock {symbol}", symbol, decimals)

    return _deploy


@pytest.fixture(scope="session")
def usdc(deploy_token):
    return deploy_token("USDC", 6)


@pytest.fixture(scope="session")
def deploy_registry(project, admin):
    """Closure: deploy a CapsuleRegistry governed by `admin`."""

    def _deploy(royalty_bps: int = 500):
        return admin.deploy(project.CapsuleRegistry, admin, royalty_bps)

    return _deploy


@pytest.fixture(scope="session")
def registry(deploy_registry):
    return deploy_registry()


@pytest.fixture(scope="session")
def deploy_router(project, admin, registry, usdc, accounts):
    """Closure: a RoyaltyRouter on the session registry accepting `usdc`, wired to `license_manager`
    and `meter` (default: the EOAs accounts[8] and accounts[9] standing in for them)."""

    def _deploy(license_manager=None, meter=None):
        r = admin.deploy(project.RoyaltyRouter, registry, admin)
        r.set_token_allowed(usdc, True, sender=admin)
        r.wire(license_manager or accounts[8], meter or accounts[9], sender=admin)
        return r

    return _deploy


@pytest.fixture(scope="module")
def system(admin, reporter) -> System:
    """Every contract deployed and wired by codexfield.deploy.deploy_system (test tokens, `reporter`
    as the Proof-of-Access reporter), one per module; the address book stays in memory."""
    return deploy(admin, reporters=[reporter])


@pytest.fixture(scope="session")
def mint_capsule(registry):
    """Closure: mint a capsule with a fresh random content hash; returns its id."""

    def _mint(sender, kind: int = 1, parents=(), credentials=(), uri: str = "", content_hash: bytes | None = None):
        h = content_hash if content_hash is not None else os.urandom(32)
        tx = registry.mint(kind, h, list(parents), list(credentials), uri, sender=sender)
        return tx.return_value

    return _mint


@pytest.fixture(scope="session", autouse=True)
def _session_contracts(registry, usdc):
    """Deploy the session-scoped contracts before any module snapshot is taken.

    ape isolates each module and test with chain snapshots; a session fixture first created in the
    middle of a module is "rebased", and a later revert to an older module snapshot can erase its
    code while pytest keeps the cached instance. Creating them first keeps every snapshot above them.
    """
    return registry, usdc


@pytest.fixture(scope="session")
def role_holders(chain):
    """Closure: the (role, account) pairs that the RoleGranted / RoleRevoked events of the
    given contracts' transactions leave standing, replayed in order from `from_block` (the
    deploy block by default): what a deploy script or an auditor checks after a handover,
    without trusting any view."""

    def _holders(contract, from_block: int | None = None) -> set[tuple[bytes, str]]:
        start = from_block
        if start is None:
            start = chain.provider.get_receipt(contract.txn_hash).block_number
        held: set[tuple[bytes, str]] = set()
        head = chain.blocks.head.number + 1
        granted = [(e.block_number, e.log_index, True, e) for e in contract.RoleGranted.range(start, head)]
        revoked = [(e.block_number, e.log_index, False, e) for e in contract.RoleRevoked.range(start, head)]
        for _, _, grant, log in sorted(granted + revoked, key=lambda t: (t[0], t[1])):
            key = (bytes(log.role), log.account)
            if grant:
                held.add(key)
            else:
                held.discard(key)
        return held

    return _holders


@pytest.fixture(scope="session")
def deploy_reverts(chain):
    """Closure: assert that deploying `container(*args)` from `account` reverts with `reason`.

    `with ape.reverts(reason): account.deploy(...)` lets ape 0.8.51 decode the failed creation
    with whatever contract type it cached for the would-be address in an earlier test, which
    fails order-dependently (eth_abi `InvalidPointer`). This asks the node directly: an
    `eth_call` of the creation transaction, whose revert reason web3 reports verbatim."""

    def _check(account, container, *args, reason: str):
        txn = container.constructor.serialize_transaction(*args, sender=account)
        data = txn.data if isinstance(txn.data, (bytes, bytearray)) else bytes(txn.data)
        with pytest.raises(Exception) as exc:
            chain.provider.web3.eth.call({"from": account.address, "data": "0x" + bytes(data).hex()})
        assert reason in str(exc.value), f"expected revert {reason!r}, got {exc.value!r}"

    return _check
