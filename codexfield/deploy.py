"""Deploy and wire the whole CodexField system on any ape network, idempotently.

`deploy_system(deployer, config)` deploys every contract of DESIGN §3 in dependency order,
wires every address (`WIRING`: one small function per contract), hands every role over
(`ROLES`: a table contract -> role -> who holds it), and writes the address book
`deployments/<ecosystem>-<network>.json`. Re-running it skips each contract that the book names
and whose on-chain code matches the compiled runtime code, and finishes any wiring or handover
step not yet done, so a half-done (or killed) deployment completes without resending anything.
`dry_run=True` prints the same steps with gas estimates without sending anything.
`verify(book)` reads the chain and reports every deviation from the book and the handover.

The scripts (`scripts/deploy.py`, `codexfield deploy`, `scripts/demo.py`) and the integration
tests all call this module, so what the tests exercise is what a deployer runs.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codexfield import deployments
from codexfield.deployments import AddressBook
from codexfield.system import System

if TYPE_CHECKING:
    from codexfield.poa import Params

SIG_AUTH = b"sigAuth".ljust(32, b"\0")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
TIMELOCK = "GovernanceTimelock"


@dataclass
class DeployConfig:
    """Every deployment parameter, with the defaults the README documents."""

    admin: str | None = None  # governance (a timelock/multisig); default: a new timelock, or the deployer
    treasury: str | None = None  # receives non-reward-token fees (never slashed stake); defaults to admin
    royalty_bps: int = 500  # ERC-2981 royalty on secondary capsule sales
    epoch_length: int = 3600  # seconds per PoA / usage epoch
    settlement_window: int = 86400  # a voucher is payable for 1 day after its issued_at
    withdrawal_thaw: int = 3 * 86400  # escrow thaw (> settlement_window)
    protocol_fee_bps: int = 200  # 2% of every metered charge feeds the PoA reward pool
    poa: Params | None = None  # AccessStaking parameters (codexfield.poa.Params defaults)
    test_tokens: bool = False  # deploy MockERC20 USDC (6) and CDX (18) first (local chains)
    stake_token: str | None = None  # existing staking token (testnets)
    reward_token: str | None = None  # existing reward/payment token, e.g. USDC (testnets)
    reporters: list[str] = field(default_factory=list)
    pausers: list[str] = field(default_factory=list)  # default: the admin
    arbiters: list[str] = field(default_factory=list)  # default: the admin
    auditors: list[str] = field(default_factory=list)  # default: the admin
    # symbol -> {"address", "decimals"}: tokens to record in the book and allow on the router
    extra_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    # With no `admin` and at least one proposer, a GovernanceTimelock is deployed as the admin.
    timelock_proposers: list[str] = field(default_factory=list)
    timelock_executors: list[str] = field(default_factory=list)  # empty: anyone may execute
    timelock_delay: int = 2 * 86400  # seconds every governance call waits in public
    confirm_pending_timeout: int = 600  # seconds to wait for the deployer's in-flight txs on a rerun


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


def create_address(sender: str, nonce: int) -> str:
    """The CREATE address of `sender`'s transaction with `nonce` (where a deployment lands)."""
    import rlp
    from eth_utils import keccak, to_bytes, to_checksum_address

    return to_checksum_address(keccak(rlp.encode([to_bytes(hexstr=sender), nonce]))[12:])


@dataclass
class Step:
    """One wiring or handover transaction: sent only when `done()` (a chain read) is false."""

    description: str
    done: Callable[[], bool]
    action: Callable[[], Any]


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
        self.sent = 0  # transactions sent in this run
        self.save_each: Callable[[AddressBook], Any] | None = None

    def _save(self) -> None:
        if self.save_each is not None:
            self.save_each(self.book)

    def _estimate(self, ct, args) -> int:
        try:
            txn = ct.constructor.serialize_transaction(*args, sender=self.account)
            return int(self.account.chain_manager.provider.estimate_gas_cost(txn))
        except Exception as exc:  # an estimate is best-effort
            self.log(f"    (no gas estimate: {str(exc).splitlines()[0][:160]})")
            return 0

    def _deploy(self, key: str, ct, args) -> Any:
        """Deploy with the next nonce; the book names the CREATE address (and `pending`) before
        the transaction is sent, so a run killed after broadcasting adopts it on the rerun."""
        nonce = self.account.nonce
        predicted = create_address(self.account.address, nonce)
        self.book.pending[key] = predicted
        self._save()
        instance = self.account.deploy(ct, *args, nonce=nonce)
        self.sent += 1
        if instance.address != predicted:  # pragma: no cover - a provider that rewrote the nonce
            self.log(f"  ! {key} landed at {instance.address}, not the predicted {predicted}")
        self.book.pending.pop(key, None)
        return instance

    def contract(self, name: str, *args, book_key: str | None = None, deps: tuple = ()):
        """The contract `name` at its book address when that holds its code and none of `deps`
        (contracts it takes in its constructor) was deployed anew in this run; else deploy it."""
        key = book_key or name
        ct = getattr(self.project, name)
        existing = self.book.contracts.get(key)
        stale = [d for d in deps if d in self.fresh]
        pending = self.book.pending.get(key)
        if not stale and not existing and pending and is_deployed(pending, ct.contract_type):
            self.log(f"  = {key} at {pending} (sent by an interrupted run)")
            self.book.contracts[key] = pending
            self.book.abi_hashes[key] = abi_hash(ct.contract_type)
            self.book.pending.pop(key, None)
            self._save()
            return ct.at(pending)
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
            est = self._estimate(ct, est_args)
            self.gas_estimates[key] = est
            shown = ", ".join("<new>" if a is None or a == ZERO_ADDRESS else str(a) for a in args)
            self.log(f"  + would deploy {key}({shown})  ~{est:,} gas")
            return None
        instance = self._deploy(key, ct, args)
        self.book.contracts[key] = instance.address
        self.book.abi_hashes[key] = abi_hash(ct.contract_type)
        self.log(f"  + {key} at {instance.address}")
        self._save()  # a crash after this deployment keeps it in the book
        return instance

    def token(self, symbol: str, name: str, decimals: int):
        """A MockERC20 test token recorded under `tokens` (not `contracts`) in the book."""
        existing = self.book.tokens.get(symbol, {}).get("address")
        ct = self.project.MockERC20
        pending = self.book.pending.get(symbol)
        if not is_deployed(existing, ct.contract_type) and pending and is_deployed(pending, ct.contract_type):
            existing = pending
            self.book.tokens[symbol] = {"address": pending, "decimals": decimals}
            self.book.pending.pop(symbol, None)
            self._save()
        if is_deployed(existing, ct.contract_type):
            self.log(f"  = {symbol} already at {existing}")
            return ct.at(existing)
        self.fresh.add(symbol)
        if self.dry_run:
            est = self._estimate(ct, (name, symbol, decimals))
            self.gas_estimates[symbol] = est
            self.log(f"  + would deploy {symbol} (MockERC20 {name!r}, {decimals} decimals)  ~{est:,} gas")
            return None
        instance = self._deploy(symbol, ct, (name, symbol, decimals))
        self.book.tokens[symbol] = {"address": instance.address, "decimals": decimals}
        self.log(f"  + {symbol} at {instance.address}")
        self._save()
        return instance

    def step(self, description: str, done: Callable[[], bool], action: Callable[[], Any]) -> None:
        """Run `action` unless `done()` says the chain already has it (dry run: only list it)."""
        if self.dry_run:
            self.wiring.append(description)
            return
        if done():
            return
        action()
        self.sent += 1
        self.log(f"  ✓ {description}")

    def run(self, steps: list[Step]) -> None:
        for s in steps:
            self.step(s.description, s.done, s.action)


# ---------------------------------------------------------------------------------------------
# The system being wired: contract instances by name (None in a dry run until deployed)
# ---------------------------------------------------------------------------------------------


@dataclass
class Wiring:
    """What the wiring steps act on: contract instances by name (None in a dry run until deployed)."""

    account: Any
    contracts: dict[str, Any]
    tokens: dict[str, dict[str, Any]]
    treasury: str
    protocol_fee_bps: int
    reporters: list[str] = field(default_factory=list)  # the PoA reporters (committee) to seat

    def __getitem__(self, name: str):
        return self.contracts[name]


# ---------------------------------------------------------------------------------------------
# WIRING: one function per contract, each a short list of steps on that contract only. Each Step
# has a `done` (a chain read: reruns skip it, `verify` re-reads it) and an `action`. Issue 12's
# one-time `wire(...)` replaces a body by a single step, e.g.
#     lm = s["LicenseManager"]
#     return [Step("LicenseManager wired to the router and the meter",
#                  lambda: lm.revenue_sink() == s["RoyaltyRouter"].address and lm.usage_meter() == ...,
#                  lambda: lm.wire(s["RoyaltyRouter"], s["UsageMeter"], sender=s.account))]
# and the reporter committee becomes one step per `s.reporters` in wire_access_staking
# (`add_reporter`), with its line removed from ROLES. Nothing else in this module changes.
# ---------------------------------------------------------------------------------------------


def wire_capsule_registry(s: Wiring) -> list[Step]:
    registry, licenses = s["CapsuleRegistry"], s["LicenseManager"]
    return [
        Step(
            "registry trusts the LicenseManager for derivative credentials",
            lambda: registry.license_manager() == licenses.address,
            lambda: registry.wire(licenses, sender=s.account),
        ),
    ]


def wire_license_manager(s: Wiring) -> list[Step]:
    licenses, router, meter = s["LicenseManager"], s["RoyaltyRouter"], s["UsageMeter"]
    return [
        Step(
            "LicenseManager wired (once) to the UsageMeter and the RoyaltyRouter",
            lambda: licenses.usage_meter() == meter.address and licenses.revenue_sink() == router.address,
            lambda: licenses.wire(meter, router, sender=s.account),
        ),
    ]


def wire_royalty_router(s: Wiring) -> list[Step]:
    router, licenses, meter = s["RoyaltyRouter"], s["LicenseManager"], s["UsageMeter"]
    # Wired once: a router wired to other creditors reverts "royalty: already wired" here
    # (a new LicenseManager or UsageMeter needs a new router).
    steps = [
        Step(
            "RoyaltyRouter accepts credits from the LicenseManager and the UsageMeter only",
            lambda: router.license_manager() == licenses.address and router.usage_meter() == meter.address,
            lambda: router.wire(licenses, meter, sender=s.account),
        )
    ]
    for sym in s.tokens or ["USDC", "CDX"]:  # (dry run before the test tokens exist: their symbols)
        steps.append(
            Step(
                f"RoyaltyRouter allows {sym}",
                lambda sym=sym: router.token_allowed(s.tokens[sym]["address"]),
                lambda sym=sym: router.set_token_allowed(s.tokens[sym]["address"], True, sender=s.account),
            )
        )
    return steps


def wire_usage_meter(s: Wiring) -> list[Step]:
    meter, staking = s["UsageMeter"], s["AccessStaking"]
    return [
        Step(
            "UsageMeter wired (once) to AccessStaking",
            lambda: meter.staking() == staking.address,
            lambda: meter.wire(staking, sender=s.account),
        ),
        Step(
            "UsageMeter fee and treasury",
            lambda: meter.treasury() == s.treasury and meter.protocol_fee_bps() == s.protocol_fee_bps,
            lambda: meter.set_fee(s.treasury, s.protocol_fee_bps, sender=s.account),
        ),
    ]


def wire_access_staking(s: Wiring) -> list[Step]:
    staking, meter = s["AccessStaking"], s["UsageMeter"]
    steps = [
        Step(
            "AccessStaking reads paid usage from the UsageMeter (wired once)",
            lambda: staking.usage_meter() == meter.address,
            lambda: staking.wire(meter, sender=s.account),
        ),
    ]
    # The constructor seats the reporters from epoch 0; reporters added on a later run sit from
    # the next epoch (AccessStaking's committee rule).
    for r in s.reporters:
        steps.append(
            Step(
                f"{r} sits in the Proof-of-Access reporter committee",
                lambda r=r: _sits_or_pending(staking, r),
                lambda r=r: staking.add_reporter(r, sender=s.account),
            )
        )
    return steps


# contract -> its wiring (run in this order; verify re-reads every `done`)
WIRING: dict[str, Callable[[Wiring], list[Step]]] = {
    "CapsuleRegistry": wire_capsule_registry,
    "LicenseManager": wire_license_manager,
    "RoyaltyRouter": wire_royalty_router,
    "UsageMeter": wire_usage_meter,
    "AccessStaking": wire_access_staking,
}


# ---------------------------------------------------------------------------------------------
# ROLES: contract -> role constant -> which holder list receives it (a new role: one line).
# The deployer renounces every role it holds that the table does not give it; the admin role
# is renounced last. `codexfield deploy verify` checks the same table against RoleGranted /
# RoleRevoked events (every member, not only the expected ones).
# ---------------------------------------------------------------------------------------------

ROLES: dict[str, dict[str, str]] = {
    "CapsuleRegistry": {"DEFAULT_ADMIN_ROLE": "admin", "PAUSER_ROLE": "pausers", "ARBITER_ROLE": "arbiters"},
    "LicenseManager": {"DEFAULT_ADMIN_ROLE": "admin", "PAUSER_ROLE": "pausers", "ARBITER_ROLE": "arbiters"},
    "RoyaltyRouter": {"DEFAULT_ADMIN_ROLE": "admin", "PAUSER_ROLE": "pausers"},
    "AccessStaking": {"DEFAULT_ADMIN_ROLE": "admin", "PAUSER_ROLE": "pausers"},
    "UsageMeter": {"DEFAULT_ADMIN_ROLE": "admin", "PAUSER_ROLE": "pausers"},
    "Reputation": {"DEFAULT_ADMIN_ROLE": "admin", "PAUSER_ROLE": "pausers", "AUDITOR_ROLE": "auditors"},
    # The timelock's own roles are set by its constructor; listed so that verify shows them.
    TIMELOCK: {
        "DEFAULT_ADMIN_ROLE": "timelock",
        "PROPOSER_ROLE": "proposers",
        "CANCELLER_ROLE": "proposers",
        "EXECUTOR_ROLE": "executors",
    },
}
# Roles the wiring grants (not handed over by `handover`, but checked by verify). None today: the
# router's creditors and AccessStaking's reporter committee are wiring steps, not roles.
WIRED_ROLES: set[tuple[str, str]] = set()


def role_holders(config: DeployConfig, admin: str, system: dict[str, str]) -> dict[str, list[str]]:
    """Holder list name -> addresses, from the config (PAUSER/ARBITER/AUDITOR default to the admin)."""
    return {
        "admin": [admin],
        "pausers": list(config.pausers) or [admin],
        "arbiters": list(config.arbiters) or [admin],
        "auditors": list(config.auditors) or [admin],
        "reporters": list(config.reporters),
        "timelock": [system[TIMELOCK]] if TIMELOCK in system else [],
        "proposers": list(config.timelock_proposers),
        "executors": list(config.timelock_executors) or [ZERO_ADDRESS],
    }


def expected_roles(config: DeployConfig, admin: str, system: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """The handover table resolved to addresses, as recorded in the book's `roles`."""
    holders = role_holders(config, admin, system)
    out: dict[str, dict[str, list[str]]] = {}
    for cname, roles in ROLES.items():
        if cname not in system:
            continue
        out[cname] = {role: sorted(set(holders[key])) for role, key in roles.items()}
    return out


def handover(d: Deployer, contracts: dict[str, Any], table: dict[str, dict[str, list[str]]], me: str) -> None:
    """Grant every role of `table` to its holders, then renounce each the deployer should not hold
    (admin last, contract by contract)."""
    for cname, roles in table.items():
        c = contracts.get(cname)
        if cname == TIMELOCK or c is None and not d.dry_run:
            continue
        wanted = {role: holders for role, holders in roles.items() if (cname, role) not in WIRED_ROLES}
        for role, holders in wanted.items():
            for h in holders:
                d.step(
                    f"{cname}: {role} to {h}",
                    lambda c=c, role=role, h=h: c.hasRole(getattr(c, role)(), h),
                    lambda c=c, role=role, h=h: c.grantRole(getattr(c, role)(), h, sender=d.account),
                )
        order = sorted(wanted, key=lambda r: r == "DEFAULT_ADMIN_ROLE")  # admin last
        for role in order:
            if me in wanted[role]:
                continue
            d.step(
                f"{cname}: deployer renounces {role}",
                lambda c=c, role=role: not c.hasRole(getattr(c, role)(), me),
                lambda c=c, role=role: c.renounceRole(getattr(c, role)(), me, sender=d.account),
            )


def _wait_for_inflight(account, log, timeout: int) -> None:
    """Wait until every transaction the deployer already broadcast is mined (a killed run's),
    so that each step's chain read is final before anything is sent again."""
    from ape import chain

    w3 = chain.provider.web3
    t0 = time.monotonic()
    said = False
    while True:
        pending = w3.eth.get_transaction_count(account.address, "pending")
        latest = w3.eth.get_transaction_count(account.address, "latest")
        if pending <= latest:
            return
        if not said:
            log(f"  … waiting for {pending - latest} transaction(s) of {account.address} already sent")
            said = True
        if time.monotonic() - t0 > timeout:
            raise deployments.AddressBookError(
                f"{pending - latest} transaction(s) of {account.address} are still pending after {timeout}s; "
                "rerun once they are mined (or replaced)"
            )
        time.sleep(1)


def _open_book(log) -> tuple[AddressBook, bool]:
    """The network's book, or a new one (`True`) when there is none, it is for another chain,
    or none of its contracts has code any more (a restarted dev chain)."""
    from ape import chain, networks

    net = networks.provider.network
    try:
        book = deployments.load(net.ecosystem.name, net.name)
    except deployments.AddressBookError:
        return AddressBook(chain_id=chain.chain_id), True
    if book.chain_id != chain.chain_id:
        return AddressBook(chain_id=chain.chain_id), True
    named = list(book.contracts.values()) + [t["address"] for t in book.tokens.values()] + list(book.pending.values())
    if named and not any(bytes(chain.provider.get_code(a)) for a in named):
        log("  ! nothing the address book names has code on this chain: starting a new book")
        return AddressBook(chain_id=chain.chain_id), True
    return book, False


def deploy_system(
    account,
    config: DeployConfig | None = None,
    *,
    save: bool = True,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
) -> System:
    """Deploy (or finish deploying) CodexField with `account`; returns the `System` over its address book.

    Idempotent: a contract named in the book whose code is on chain is reused (unless a
    contract it depends on had to be deployed anew), and every wiring and handover step first
    reads the chain. The book is saved before and after each deployment, so a crash leaves a
    book that the next run completes. `dry_run=True` prints the plan with gas estimates and
    sends nothing.
    """
    from ape import chain, networks

    config = config or DeployConfig()
    net = networks.provider.network
    book, new = _open_book(log)
    if new:
        book.block = chain.blocks.head.number  # the indexer starts here; kept by every rerun
    book.commit = git_commit()
    d = Deployer(account, book, log=log, dry_run=dry_run)
    if save and not dry_run:
        d.save_each = lambda b: deployments.save(b, net.ecosystem.name, net.name)
    me = account.address

    mode = "plan (dry run, nothing is sent)" if dry_run else "deployment"
    log(f"CodexField {mode} on {net.ecosystem.name}:{net.name} (chain {chain.chain_id}) by {me}")
    if not dry_run:
        _wait_for_inflight(account, log, config.confirm_pending_timeout)

    # 0. Governance: a timelock when no admin is named and proposers are (non-local networks).
    timelock = None
    if config.admin is None and config.timelock_proposers:
        timelock = d.contract(
            TIMELOCK,
            config.timelock_delay,
            list(config.timelock_proposers),
            list(config.timelock_executors) or [ZERO_ADDRESS],
            ZERO_ADDRESS,
        )
    admin = config.admin or (_addr(timelock) if timelock is not None else None)
    if admin is None:
        admin = "<new timelock>" if config.timelock_proposers else me
    treasury = config.treasury or admin

    # 1. Test tokens first so their local addresses are deterministic (token lists rely on it).
    if config.test_tokens:
        d.token("USDC", "Mock USDC", 6)
        d.token("CDX", "CodexField Stake", 18)
    for sym, info in config.extra_tokens.items():
        book.tokens[sym] = dict(info)
    stake_token = config.stake_token or book.tokens.get("CDX", {}).get("address")
    reward_token = config.reward_token or book.tokens.get("USDC", {}).get("address")
    if not dry_run and (stake_token is None or reward_token is None):
        raise deployments.AddressBookError(
            "no staking/reward token: pass --stake-token and --reward-token, or --test-tokens on a local chain"
        )
    token_deps = tuple(s for s in ("USDC", "CDX") if config.test_tokens)

    # 2. Contracts in dependency order. The deployer administers them while wiring; roles are
    #    handed over at the end (step 4).
    _drop_stale_wired_group(d, book, log)
    c: dict[str, Any] = {}
    c["IdentityRegistry"] = d.contract("IdentityRegistry")
    c["CapsuleRegistry"] = d.contract("CapsuleRegistry", me, config.royalty_bps)
    registry = c["CapsuleRegistry"]
    c["RoyaltyRouter"] = d.contract("RoyaltyRouter", _addr(registry), me, deps=("CapsuleRegistry",))
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
    c["AccessStaking"] = d.contract(
        "AccessStaking",
        *access_staking_args(stake_token, reward_token, me, config, genesis),
        deps=token_deps + meter_deps,
    )
    if c["AccessStaking"] is not None:
        genesis = int(c["AccessStaking"].genesis())
    # The LicenseManager and the meter wire each other once (`wire`): when the meter will be new
    # (its code is missing, or something it takes or wires to is new), a wired LicenseManager
    # cannot follow it and is deployed anew too.
    if not is_deployed(book.contracts.get("UsageMeter"), d.project.UsageMeter.contract_type):
        d.fresh.add("UsageMeter (missing)")
    c["LicenseManager"] = d.contract(
        "LicenseManager",
        _addr(registry),
        me,
        config.settlement_window,
        deps=("CapsuleRegistry", "RoyaltyRouter", "IdentityRegistry", "AccessStaking", "UsageMeter (missing)"),
    )
    # (dry run with a new AccessStaking: the meter's estimate uses genesis 0.)
    c["UsageMeter"] = d.contract(
        "UsageMeter",
        _addr(c["LicenseManager"]),
        _addr(c["RoyaltyRouter"]),
        _addr(c["IdentityRegistry"]),
        me,
        config.epoch_length,
        genesis,
        config.settlement_window,
        config.withdrawal_thaw,
        config.protocol_fee_bps,
        deps=("LicenseManager", "RoyaltyRouter", "IdentityRegistry", "AccessStaking"),
    )
    if "Reputation" in _contract_names(d.project):
        c["Reputation"] = d.contract(
            "Reputation", _addr(registry), _addr(c["LicenseManager"]), me, deps=("CapsuleRegistry", "LicenseManager")
        )
    if timelock is not None:
        c[TIMELOCK] = timelock

    # 3. Wiring (each step checks the chain first, so re-runs skip it).
    system = Wiring(account, c, book.tokens, treasury, config.protocol_fee_bps, list(config.reporters))
    for wire in WIRING.values():
        d.run(wire(system))

    # 4. Hand every role over (ROLES) and renounce the deployer's.
    addresses = {**book.contracts, **{k: (v.address if v is not None else f"<new {k}>") for k, v in c.items()}}
    table = expected_roles(config, admin, addresses)
    book.roles = table
    book.deployer = me
    book.settings = {
        "treasury": treasury,
        "protocol_fee_bps": config.protocol_fee_bps,
        "reporters": list(config.reporters),
    }
    handover(d, c, table, me)
    if not config.reporters:
        log(
            "WARNING: no --reporter was given: nobody may report Proof-of-Access probes, so no node "
            "will be scored and no PoA reward is paid until governance seats reporters (AccessStaking.add_reporter)"
        )

    if dry_run:
        for w in d.wiring:
            log(f"  ~ would wire: {w}")
        total = sum(d.gas_estimates.values())
        log(
            f"plan: {len(d.gas_estimates)} contract(s) to deploy, ~{total:,} gas for the deployments; "
            f"{len(d.wiring)} wiring step(s) to check (each is sent only if the chain lacks it)"
        )
        return System(book)

    if save:
        path = deployments.save(book, net.ecosystem.name, net.name)
        log(f"address book: {path}  ({d.sent} transaction(s) sent in this run)")
    return System(book)


# ---------------------------------------------------------------------------------------------
# verify: read the chain, print the wiring and the role table, list every deviation
# ---------------------------------------------------------------------------------------------


def role_members(contract, start_block: int) -> dict[str, set[str]]:
    """role id (hex) -> current members, from the contract's RoleGranted/RoleRevoked events."""
    from ape import chain

    stop = chain.blocks.head.number
    events = []
    for ev in ("RoleGranted", "RoleRevoked"):
        for log in getattr(contract, ev).range(start_block, stop + 1):
            events.append((log.block_number, log.log_index, ev, log.role, log.account))
    members: dict[str, set[str]] = {}
    for _, _, ev, role, account in sorted(events, key=lambda e: (e[0], e[1])):
        key = "0x" + bytes(role).hex()
        (members.setdefault(key, set()).add if ev == "RoleGranted" else members.setdefault(key, set()).discard)(
            str(account)
        )
    return members


def verify(book: AddressBook, log: Callable[[str], None] = print) -> list[str]:
    """Check the chain against `book`: every contract holds its code, every wiring step is done,
    and every role of the book's handover table is held by exactly its holders (from events).
    Prints the wiring and the role table; returns the deviations (empty: all good)."""
    from ape import project

    problems: list[str] = []
    c: dict[str, Any] = {}
    log(f"contracts ({book.path or 'address book'}):")
    for name, address in book.contracts.items():
        ct = getattr(project, name, None)
        ok = ct is not None and is_deployed(address, ct.contract_type)
        log(f"  {'✓' if ok else '✗'} {name:<20} {address}")
        if ok:
            c[name] = ct.at(address)
        else:
            problems.append(f"{name}: {address} does not hold its compiled code")
    for sym, info in book.tokens.items():
        log(f"  · {sym:<20} {info['address']} ({info.get('decimals')} decimals)")
    if book.pending:
        problems.append(f"deployments sent but not recorded: {book.pending} (rerun the deploy)")

    log("wiring:")
    settings = book.settings or {}
    system = Wiring(
        None,
        c,
        book.tokens,
        settings.get("treasury", ""),
        int(settings.get("protocol_fee_bps", 0)),
        list(settings.get("reporters", [])),
    )
    for cname, wire in WIRING.items():
        try:
            steps = wire(system)
        except KeyError as exc:
            problems.append(f"{cname}: cannot check its wiring ({exc.args[0]} is not deployed)")
            continue
        for s in steps:
            ok = bool(s.done())
            log(f"  {'✓' if ok else '✗'} {s.description}")
            if not ok:
                problems.append(f"not wired: {s.description}")

    log("roles (from RoleGranted/RoleRevoked events):")
    if not book.roles:
        problems.append("the address book records no role handover (deployed by an older deploy script)")
    for cname, roles in book.roles.items():
        contract = c.get(cname)
        if contract is None:
            continue
        members = role_members(contract, book.block)
        for role, wanted in roles.items():
            role_id = "0x" + bytes(getattr(contract, role)()).hex()
            have = members.get(role_id, set())
            ok = {a.lower() for a in have} == {a.lower() for a in wanted}
            shown = ", ".join(sorted(have)) or "(nobody)"
            log(f"  {'✓' if ok else '✗'} {cname:<18} {role:<19} {shown}")
            if not ok:
                problems.append(f"{cname}.{role}: held by {sorted(have) or 'nobody'}, expected {wanted or 'nobody'}")
            if book.deployer and book.deployer not in wanted and contract.hasRole(role_id, book.deployer):
                problems.append(f"{cname}.{role}: the deployer {book.deployer} still holds it")
    if problems:
        log(f"{len(problems)} deviation(s):")
        for p in problems:
            log(f"  ✗ {p}")
    else:
        log("verified: every contract, wiring step and role matches the address book")
    return problems


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


# Contracts wired to each other once (`wire`): getter -> the book entry it must point at.
WIRED_GROUP: dict[str, tuple[tuple[str, str], ...]] = {
    "CapsuleRegistry": (("license_manager", "LicenseManager"),),
    "LicenseManager": (("usage_meter", "UsageMeter"), ("revenue_sink", "RoyaltyRouter")),
    "RoyaltyRouter": (("license_manager", "LicenseManager"), ("usage_meter", "UsageMeter")),
    "UsageMeter": (("staking", "AccessStaking"),),
    "AccessStaking": (("usage_meter", "UsageMeter"),),
}


def _drop_stale_wired_group(d: Deployer, book: AddressBook, log: Callable[[str], None]) -> None:
    """Wiring is once and for ever: when a member of the wired group must be deployed anew (its
    code is missing) while another member is already wired, or a member is wired to something
    other than the book's contract, the wired members can never follow. Then the whole group
    (and Reputation, which takes the registry and the LicenseManager) is deployed anew; a
    half-done deployment whose members are not wired yet keeps them."""
    present = {n: is_deployed(book.contracts.get(n), getattr(d.project, n).contract_type) for n in WIRED_GROUP}
    wired_to: dict[str, dict[str, str]] = {}
    for name, links in WIRED_GROUP.items():
        if not present[name]:
            continue
        inst = getattr(d.project, name).at(book.contracts[name])
        wired_to[name] = {target: str(getattr(inst, getter)()) for getter, target in links}
    wired = {n: t for n, t in wired_to.items() if any(a != ZERO_ADDRESS for a in t.values())}
    mismatch = any(
        a != ZERO_ADDRESS and (not present[target] or a.lower() != str(book.contracts[target]).lower())
        for links in wired.values()
        for target, a in links.items()
    )
    if wired and (mismatch or not all(present.values())):
        stale = [n for n in (*WIRED_GROUP, "Reputation") if n in book.contracts]
        log(f"  ! {', '.join(stale)}: wired once to contracts that must be deployed anew; deploying the group anew")
        for n in stale:
            book.contracts.pop(n, None)


def _sits_or_pending(staking, reporter: str) -> bool:
    """True when `reporter` sits in the committee of the next epoch (or already does)."""
    return bool(staking.is_reporter(reporter, int(staking.current_epoch()) + 1))


def _addr(c) -> str:
    return c.address if c is not None else "0x0000000000000000000000000000000000000000"
