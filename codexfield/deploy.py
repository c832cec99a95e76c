"""Deploy and wire the whole CodexField system on any ape network, idempotently.

`deploy_system(deployer, config)` deploys every contract of DESIGN §3 in dependency order,
wires every address and role, and writes the address book `deployments/<ecosystem>-<network>.json`.
Re-running it skips each contract that the book names and whose on-chain code matches the
compiled runtime code, and finishes any wiring step not yet done, so a half-done deployment
completes. `plan(...)` prints the same steps with gas estimates without sending anything.

The scripts (`scripts/deploy.py`, `scripts/demo.py`) and the integration tests all call this
module, so what the tests exercise is what a deployer runs.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable

from codexfield import deployments
from codexfield.deployments import AddressBook

if False:  # typing only
    from codexfield.poa import Params  # noqa: F401

SIG_AUTH = b"sigAuth".ljust(32, b"\0")


@dataclass
class DeployConfig:
    """Every deployment parameter, with the defaults the README documents."""

    admin: str | None = None  # governance (a timelock); defaults to the deployer
    treasury: str | None = None  # receives slashes and non-reward-token fees; defaults to admin
    royalty_bps: int = 500  # ERC-2981 royalty on secondary capsule sales
    epoch_length: int = 3600  # seconds per PoA / usage epoch
    withdrawal_thaw: int = 3 * 86400  # escrow thaw (> settlement window of 1 day)
    protocol_fee_bps: int = 200  # 2% of every metered charge feeds the PoA reward pool
    poa: "Params | None" = None  # AccessStaking parameters (codexfield.poa.Params defaults)
    test_tokens: bool = False  # deploy MockERC20 USDC (6) and CDX (18) first (local chains)
    stake_token: str | None = None  # existing staking token (testnets)
    reward_token: str | None = None  # existing reward/payment token, e.g. USDC (testnets)
    reporters: list[str] = field(default_factory=list)
    extra_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)


def git_commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=deployments.ROOT, text=True).strip()
    except Exception:  # pragma: no cover - outside a checkout
        return ""


def _runtime(contract_type) -> bytes:
    code = contract_type.runtime_bytecode.bytecode if contract_type.runtime_bytecode else "0x"
    return bytes.fromhex(code[2:] if code.startswith("0x") else code)


def abi_hash(contract_type) -> str:
    import json

    abi = [a.model_dump(mode="json", by_alias=True) for a in contract_type.abi]
    return "0x" + hashlib.sha256(json.dumps(abi, sort_keys=True).encode()).hexdigest()


def is_deployed(address: str | None, contract_type) -> bool:
    """True when `address` holds the compiled runtime code of `contract_type` (Vyper appends
    immutables after the runtime code, so the deployed code must start with it)."""
    from ape import chain

    if not address:
        return False
    code = bytes(chain.provider.get_code(address))
    runtime = _runtime(contract_type)
    return bool(code) and bool(runtime) and code.startswith(runtime[: max(0, len(runtime) - 64)])


class Deployer:
    """Runs the deployment steps against a book, skipping what is already there."""

    def __init__(self, account, book: AddressBook, log: Callable[[str], None] = print, dry_run: bool = False):
        from ape import project

        self.account = account
        self.book = book
        self.log = log
        self.dry_run = dry_run
        self.project = project
        self.gas_estimates: dict[str, int] = {}

    def contract(self, name: str, *args, book_key: str | None = None):
        key = book_key or name
        ct = getattr(self.project, name)
        existing = self.book.contracts.get(key)
        if is_deployed(existing, ct.contract_type):
            self.log(f"  = {key} already at {existing}")
            return ct.at(existing)
        if self.dry_run:
            try:
                est = self.account.chain_manager.provider.estimate_gas_cost(
                    ct.constructor.serialize_transaction(*args, sender=self.account)
                )
            except Exception:
                est = 0
            self.gas_estimates[key] = est
            self.log(f"  + would deploy {key}({', '.join(map(str, args))})  ~{est:,} gas")
            return None
        instance = self.account.deploy(ct, *args)
        self.book.contracts[key] = instance.address
        self.book.abi_hashes[key] = abi_hash(ct.contract_type)
        self.log(f"  + {key} at {instance.address}")
        return instance

    def step(self, description: str, done: Callable[[], bool], action: Callable[[], Any]) -> None:
        if self.dry_run:
            self.log(f"  ~ would {description}")
            return
        if done():
            return
        action()
        self.log(f"  ✓ {description}")


def deploy_system(
    account,
    config: DeployConfig | None = None,
    *,
    save: bool = True,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
) -> AddressBook:
    """Deploy (or finish deploying) CodexField with `account`; returns the address book."""
    from ape import chain, networks

    config = config or DeployConfig()
    net = networks.provider.network
    try:
        book = deployments.load(net.ecosystem.name, net.name)
        if book.chain_id != chain.chain_id:
            book = AddressBook(chain_id=chain.chain_id)
    except deployments.AddressBookError:
        book = AddressBook(chain_id=chain.chain_id)
    if not book.block:
        book.block = chain.blocks.head.number
    book.commit = git_commit()
    d = Deployer(account, book, log=log, dry_run=dry_run)
    admin = config.admin or account.address
    treasury = config.treasury or admin
    me = account.address

    log(f"CodexField deployment on {net.ecosystem.name}:{net.name} (chain {chain.chain_id}) by {me}")

    # 1. Test tokens first so their local addresses are deterministic (token lists rely on it).
    if config.test_tokens:
        usdc = d.contract("MockERC20", "Mock USDC", "USDC", 6, book_key="USDC")
        cdx = d.contract("MockERC20", "CodexField Stake", "CDX", 18, book_key="CDX")
        for sym, tok, dec in (("USDC", usdc, 6), ("CDX", cdx, 18)):
            if tok is not None:
                book.tokens[sym] = {"address": tok.address, "decimals": dec}
                book.contracts.pop(sym, None)
    for sym, info in config.extra_tokens.items():
        book.tokens[sym] = info
    stake_token = config.stake_token or book.tokens.get("CDX", {}).get("address")
    reward_token = config.reward_token or book.tokens.get("USDC", {}).get("address")
    if not dry_run and (stake_token is None or reward_token is None):
        raise deployments.AddressBookError(
            "no staking/reward token: pass --stake-token and --reward-token, or --test-tokens on a local chain"
        )

    # 2. Contracts in dependency order. The deployer administers them while wiring; roles are
    #    handed to `admin` (a timelock) at the end.
    identity = d.contract("IdentityRegistry")
    registry = d.contract("CapsuleRegistry", me, config.royalty_bps)
    licenses = d.contract("LicenseManager", _addr(registry), me)
    router = d.contract("RoyaltyRouter", _addr(registry), me)
    genesis = chain.pending_timestamp - 1
    staking = d.contract(
        "AccessStaking",
        *access_staking_args(stake_token, reward_token, treasury, me, config, genesis),
    )
    if staking is not None and "AccessStaking" in book.contracts:
        genesis = staking.genesis()
    meter = d.contract(
        "UsageMeter",
        _addr(licenses),
        _addr(router),
        _addr(identity),
        me,
        config.epoch_length,
        genesis,
        config.withdrawal_thaw,
        config.protocol_fee_bps,
    )
    reputation = None
    if hasattr(d.project, "Reputation"):
        reputation = d.contract("Reputation", _addr(registry), _addr(licenses), me)

    if dry_run:
        total = sum(d.gas_estimates.values())
        log(f"plan: {len(d.gas_estimates)} contracts to deploy, ~{total:,} gas; wiring steps listed above")
        return book

    # 3. Wiring (each step checks the chain first, so re-runs skip it).
    d.step(
        "registry trusts the LicenseManager for derivative credentials",
        lambda: registry.license_manager() == licenses.address,
        lambda: registry.set_license_manager(licenses, sender=account),
    )
    d.step(
        "LicenseManager pays upfront fees into the RoyaltyRouter",
        lambda: licenses.revenue_sink() == router.address,
        lambda: licenses.set_revenue_sink(router, sender=account),
    )
    d.step(
        "LicenseManager accepts consumption from the UsageMeter",
        lambda: licenses.usage_meter() == meter.address,
        lambda: licenses.set_meter(meter, sender=account),
    )
    creditor = router.CREDITOR_ROLE()
    for who, name in ((licenses, "LicenseManager"), (meter, "UsageMeter")):
        d.step(
            f"RoyaltyRouter accepts credits from the {name}",
            lambda who=who: router.hasRole(creditor, who),
            lambda who=who: router.grantRole(creditor, who, sender=account),
        )
    for sym, info in book.tokens.items():
        d.step(
            f"RoyaltyRouter allows {sym}",
            lambda info=info: router.token_allowed(info["address"]),
            lambda info=info: router.set_token_allowed(info["address"], True, sender=account),
        )
    d.step(
        "UsageMeter feeds protocol fees into AccessStaking",
        lambda: meter.staking() == staking.address and meter.treasury() == treasury,
        lambda: meter.configure(staking, treasury, config.protocol_fee_bps, sender=account),
    )
    d.step(
        "AccessStaking reads paid usage from the UsageMeter",
        lambda: staking.usage_meter() == meter.address,
        lambda: staking.set_usage_meter(meter, sender=account),
    )
    reporter_role = staking.REPORTER_ROLE()
    for r in config.reporters:
        d.step(
            f"{r} may report Proof-of-Access probes",
            lambda r=r: staking.hasRole(reporter_role, r),
            lambda r=r: staking.grantRole(reporter_role, r, sender=account),
        )

    # 4. Hand governance to `admin` (meant to be a timelock) when it is not the deployer.
    if admin != me:
        contracts = [registry, licenses, router, staking, meter] + ([reputation] if reputation else [])
        for c in contracts:
            admin_role = c.DEFAULT_ADMIN_ROLE()
            d.step(
                f"{c.contract_type.name}: admin role to {admin}",
                lambda c=c, r=admin_role: c.hasRole(r, admin),
                lambda c=c, r=admin_role: c.grantRole(r, admin, sender=account),
            )
            d.step(
                f"{c.contract_type.name}: deployer renounces admin",
                lambda c=c, r=admin_role: not c.hasRole(r, me),
                lambda c=c, r=admin_role: c.renounceRole(r, me, sender=account),
            )

    if save:
        path = deployments.save(book, net.ecosystem.name, net.name)
        log(f"address book: {path}")
    return book


def access_staking_args(stake_token, reward_token, treasury, admin, config: DeployConfig, genesis: int) -> tuple:
    """Constructor arguments of AccessStaking (kept in one place)."""
    from codexfield.poa import Params

    params = config.poa or Params()
    return (stake_token, reward_token, treasury, admin, genesis, config.epoch_length, params.as_tuple())


def _addr(c) -> str:
    return c.address if c is not None else "0x0000000000000000000000000000000000000000"
