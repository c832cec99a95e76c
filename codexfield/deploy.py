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
from typing import TYPE_CHECKING, Any, Callable

from codexfield import deployments
from codexfield.deployments import AddressBook

if TYPE_CHECKING:
    from codexfield.poa import Params

SIG_AUTH = b"sigAuth".ljust(32, b"\0")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass
class DeployConfig:
    """Every deployment parameter, with the defaults the README documents."""

    admin: str | None = None  # governance (a timelock); defaults to the deployer
    treasury: str | None = None  # receives non-reward-token fees (never slashed stake); defaults to admin
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
        self.fresh: set[str] = set()  # book keys deployed (or to be deployed) in this run
        self.wiring: list[str] = []  # dry run: the wiring steps that would be checked/sent
        self.save_each: Callable[[AddressBook], Any] | None = None

    def contract(self, name: str, *args, book_key: str | None = None, deps: tuple = ()):
        """The contract `name` at its book address when that holds its code and none of `deps`
        (contracts it takes in its constructor) was deployed anew in this run; else deploy it."""
        key = book_key or name
        ct = getattr(self.project, name)
        existing = self.book.contracts.get(key)
        stale = [d for d in deps if d in self.fresh]
        if not stale and is_deployed(existing, ct.contract_type):
            self.log(f"  = {key} already at {existing}")
            return ct.at(existing)
        if existing and not stale:
            self.log(f"  ! {key}: the book's {existing} does not hold its code; deploying anew")
        elif stale and existing:
            self.log(f"  ! {key}: {', '.join(stale)} changed; deploying anew")
        self.fresh.add(key)
        if self.dry_run:
            placeholder = self.account.address
            est_args = [placeholder if a is None or a == ZERO_ADDRESS else a for a in args]
            try:
                txn = ct.constructor.serialize_transaction(*est_args, sender=self.account)
                est = int(self.account.chain_manager.provider.estimate_gas_cost(txn))
            except Exception as exc:  # an estimate is best-effort
                self.log(f"    (no gas estimate for {key}: {str(exc).splitlines()[0][:160]})")
                est = 0
            self.gas_estimates[key] = est
            shown = ", ".join("<new>" if a is None or a == ZERO_ADDRESS else str(a) for a in args)
            self.log(f"  + would deploy {key}({shown})  ~{est:,} gas")
            return None
        instance = self.account.deploy(ct, *args)
        self.book.contracts[key] = instance.address
        self.book.abi_hashes[key] = abi_hash(ct.contract_type)
        self.log(f"  + {key} at {instance.address}")
        if self.save_each is not None:
            self.save_each(self.book)  # a crash after this deployment keeps it in the book
        return instance

    def token(self, symbol: str, name: str, decimals: int):
        """A MockERC20 test token recorded under `tokens` (not `contracts`) in the book."""
        existing = self.book.tokens.get(symbol, {}).get("address")
        ct = self.project.MockERC20
        if is_deployed(existing, ct.contract_type):
            self.log(f"  = {symbol} already at {existing}")
            return ct.at(existing)
        self.fresh.add(symbol)
        if self.dry_run:
            try:
                txn = ct.constructor.serialize_transaction(name, symbol, decimals, sender=self.account)
                est = int(self.account.chain_manager.provider.estimate_gas_cost(txn))
            except Exception:
                est = 0
            self.gas_estimates[symbol] = est
            self.log(f"  + would deploy {symbol} (MockERC20 {name!r}, {decimals} decimals)  ~{est:,} gas")
            return None
        instance = self.account.deploy(ct, name, symbol, decimals)
        self.book.tokens[symbol] = {"address": instance.address, "decimals": decimals}
        self.log(f"  + {symbol} at {instance.address}")
        if self.save_each is not None:
            self.save_each(self.book)
        return instance

    def step(self, description: str, done: Callable[[], bool], action: Callable[[], Any]) -> None:
        """Run `action` unless `done()` says the chain already has it (dry run: only list it)."""
        if self.dry_run:
            self.wiring.append(description)
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
    """Deploy (or finish deploying) CodexField with `account`; returns the address book.

    Idempotent: a contract named in the book whose code is on chain is reused (unless a
    contract it depends on had to be deployed anew), and every wiring step first reads the
    chain. The book is saved after each deployment, so a crash leaves a book that the next
    run completes. `dry_run=True` prints the plan with gas estimates and sends nothing.
    """
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
    if save and not dry_run:
        d.save_each = lambda b: deployments.save(b, net.ecosystem.name, net.name)
    admin = config.admin or account.address
    treasury = config.treasury or admin
    me = account.address

    mode = "plan (dry run, nothing is sent)" if dry_run else "deployment"
    log(f"CodexField {mode} on {net.ecosystem.name}:{net.name} (chain {chain.chain_id}) by {me}")

    # 1. Test tokens first so their local addresses are deterministic (token lists rely on it).
    if config.test_tokens:
        d.token("USDC", "Mock USDC", 6)
        d.token("CDX", "CodexField Stake", 18)
    for sym, info in config.extra_tokens.items():
        book.tokens[sym] = info
    stake_token = config.stake_token or book.tokens.get("CDX", {}).get("address")
    reward_token = config.reward_token or book.tokens.get("USDC", {}).get("address")
    if not dry_run and (stake_token is None or reward_token is None):
        raise deployments.AddressBookError(
            "no staking/reward token: pass --stake-token and --reward-token, or --test-tokens on a local chain"
        )
    token_deps = tuple(s for s in ("USDC", "CDX") if config.test_tokens)

    # 2. Contracts in dependency order. The deployer administers them while wiring; roles are
    #    handed to `admin` (a timelock) at the end.
    identity = d.contract("IdentityRegistry")
    registry = d.contract("CapsuleRegistry", me, config.royalty_bps)
    licenses = d.contract("LicenseManager", _addr(registry), me, deps=("CapsuleRegistry",))
    router = d.contract("RoyaltyRouter", _addr(registry), me, deps=("CapsuleRegistry",))
    # Staking and meter share epochs: a surviving meter fixes the genesis of a new staking;
    # otherwise 0 lets AccessStaking take its deploy block's timestamp.
    genesis = 0
    old_meter = book.contracts.get("UsageMeter")
    old_staking = book.contracts.get("AccessStaking")
    if is_deployed(old_staking, d.project.AccessStaking.contract_type):
        genesis = int(d.project.AccessStaking.at(old_staking).genesis())
    elif is_deployed(old_meter, d.project.UsageMeter.contract_type):
        genesis = int(d.project.UsageMeter.at(old_meter).genesis())
    # AccessStaking is wired to its meter once (`wire`): whatever makes a new meter (its
    # constructor's contracts) makes a new AccessStaking too, and one wired to another meter than
    # the book's is redeployed.
    meter_deps = ("LicenseManager", "RoyaltyRouter", "IdentityRegistry")
    if is_deployed(old_staking, d.project.AccessStaking.contract_type):
        wired = str(d.project.AccessStaking.at(old_staking).usage_meter())
        if wired != ZERO_ADDRESS and not (
            is_deployed(old_meter, d.project.UsageMeter.contract_type) and wired.lower() == str(old_meter).lower()
        ):
            book.contracts.pop("AccessStaking", None)
    staking = d.contract(
        "AccessStaking",
        *access_staking_args(stake_token, reward_token, me, config, genesis),
        deps=token_deps + meter_deps,
    )
    if staking is not None:
        genesis = int(staking.genesis())
    # (dry run with a new AccessStaking: the meter's estimate uses genesis 0.)
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
        deps=("LicenseManager", "RoyaltyRouter", "IdentityRegistry", "AccessStaking"),
    )
    reputation = None
    if "Reputation" in _contract_names(d.project):
        reputation = d.contract(
            "Reputation", _addr(registry), _addr(licenses), me, deps=("CapsuleRegistry", "LicenseManager")
        )

    # 3. Wiring (each step checks the chain first, so re-runs skip it).
    d.step(
        "registry trusts the LicenseManager for derivative credentials",
        lambda: registry.license_manager() == licenses.address,
        lambda: registry.wire(licenses, sender=account),
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
    # Wired once: a router wired to other creditors reverts "royalty: already wired" here
    # (a new LicenseManager or UsageMeter needs a new router).
    d.step(
        "RoyaltyRouter accepts credits from the LicenseManager and the UsageMeter only",
        lambda: router.license_manager() == licenses.address and router.usage_meter() == meter.address,
        lambda: router.wire(licenses, meter, sender=account),
    )
    for sym in list(book.tokens) or ["USDC", "CDX"]:
        d.step(
            f"RoyaltyRouter allows {sym}",
            lambda sym=sym: router.token_allowed(book.tokens[sym]["address"]),
            lambda sym=sym: router.set_token_allowed(book.tokens[sym]["address"], True, sender=account),
        )
    d.step(
        "UsageMeter feeds protocol fees into AccessStaking",
        lambda: meter.staking() == staking.address
        and meter.treasury() == treasury
        and meter.protocol_fee_bps() == config.protocol_fee_bps,
        lambda: meter.configure(staking, treasury, config.protocol_fee_bps, sender=account),
    )
    d.step(
        "AccessStaking reads paid usage from the UsageMeter (wired once)",
        lambda: staking.usage_meter() == meter.address,
        lambda: staking.wire(meter, sender=account),
    )
    # The constructor seats config.reporters from epoch 0; reporters added on a later run sit
    # from the next epoch (AccessStaking's committee rule).
    for r in config.reporters:
        d.step(
            f"{r} sits in the Proof-of-Access reporter committee",
            lambda r=r: _sits_or_pending(staking, r),
            lambda r=r: staking.add_reporter(r, sender=account),
        )

    # 4. Hand governance to `admin` (meant to be a timelock) when it is not the deployer.
    if admin != me:
        named = [
            ("CapsuleRegistry", registry),
            ("LicenseManager", licenses),
            ("RoyaltyRouter", router),
            ("AccessStaking", staking),
            ("UsageMeter", meter),
        ] + ([("Reputation", reputation)] if reputation is not None or "Reputation" in d.fresh else [])
        for cname, c in named:
            d.step(
                f"{cname}: admin role to {admin}",
                lambda c=c: c.hasRole(c.DEFAULT_ADMIN_ROLE(), admin),
                lambda c=c: c.grantRole(c.DEFAULT_ADMIN_ROLE(), admin, sender=account),
            )
            d.step(
                f"{cname}: deployer renounces admin",
                lambda c=c: not c.hasRole(c.DEFAULT_ADMIN_ROLE(), me),
                lambda c=c: c.renounceRole(c.DEFAULT_ADMIN_ROLE(), me, sender=account),
            )

    if dry_run:
        for w in d.wiring:
            log(f"  ~ would wire: {w}")
        total = sum(d.gas_estimates.values())
        log(
            f"plan: {len(d.gas_estimates)} contract(s) to deploy, ~{total:,} gas for the deployments; "
            f"{len(d.wiring)} wiring step(s) to check (each is sent only if the chain lacks it)"
        )
        return book

    if save:
        path = deployments.save(book, net.ecosystem.name, net.name)
        log(f"address book: {path}")
    return book


def _contract_names(project) -> set[str]:
    try:
        return set(project.contracts)
    except Exception:  # pragma: no cover - older ape
        return set()


def access_staking_args(stake_token, reward_token, admin, config: DeployConfig, genesis: int) -> tuple:
    """Constructor arguments of AccessStaking (kept in one place): no treasury (slashed stake
    funds the reward pool or is burnt); `config.reporters` are the initial committee."""
    from codexfield.poa import Params

    params = config.poa or Params()
    return (stake_token, reward_token, admin, genesis, config.epoch_length, params.as_tuple(), list(config.reporters))


def _sits_or_pending(staking, reporter: str) -> bool:
    """True when `reporter` sits in the committee of the next epoch (or already does)."""
    return bool(staking.is_reporter(reporter, int(staking.current_epoch()) + 1))


def _addr(c) -> str:
    return c.address if c is not None else "0x0000000000000000000000000000000000000000"
