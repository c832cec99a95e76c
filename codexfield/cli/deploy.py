"""The deployer's command line: `ape run deploy` (= `codexfield deploy run`) and
`codexfield deploy verify`.

    ape run deploy --network ethereum:sepolia:node --account deployer --yes \\
        --stake-token 0x... --reward-token 0x... --proposer 0xSAFE... \\
        --pauser 0x... --arbiter 0x... --auditor 0x... --reporter 0x... [--dry-run]
    codexfield deploy verify --network ethereum:sepolia:node

Every mistake is caught before the first transaction (preflight) and reported as one line
(`Error: ...`, exit status 1, no traceback): a wrong network name, a missing RPC URL
variable, an RPC that does not answer, a chain id that is not the network's, an unknown
account alias, a missing passphrase, a placeholder instead of an address, a token address
without code or `decimals()`, an EOA as `--admin` on a public network, `--test-tokens` off a
local chain, a balance below the estimated gas. The work is in `codexfield.deploy`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from codexfield import deployments
from codexfield.cli.options import network_option
from codexfield.deploy import TIMELOCK, ZERO_ADDRESS, DeployConfig, deploy_system, verify

# network name -> the environment variable ape-config.yaml reads its RPC URL from
RPC_ENV = {"sepolia": "SEPOLIA_RPC_URL", "base-sepolia": "BASE_SEPOLIA_RPC_URL"}
LOCAL_CHAIN_IDS = {31337, 1337}
# Upper bound of one wiring / handover transaction (role grants, setters) in the balance check;
# the deployments themselves are estimated with eth_estimateGas.
WIRING_STEP_GAS_BOUND = 150_000
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class Refused(click.ClickException):
    """One line for the deployer; nothing was sent."""

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def _address(flag: str, value: str | None) -> str | None:
    """A checksummed address, or a clear refusal of a placeholder / typo."""
    if value is None:
        return None
    if not ADDRESS.match(value):
        placeholder = not re.match(r"^0x[0-9a-fA-F]*$", value)
        hint = " (a placeholder from the docs: put the real address)" if placeholder else ""
        raise Refused(f"{flag} {value!r} is not an address{hint}")
    from eth_utils import to_checksum_address

    return to_checksum_address(value)


@contextmanager
def connect(network: str) -> Iterator[Any]:
    """Connect ape to `network`; every way that fails becomes one `Refused` line."""
    from ape import networks
    from ape.exceptions import ApeException

    parts = network.split(":")
    name = parts[1] if len(parts) > 1 else ""
    var = RPC_ENV.get(name)
    if var and not os.environ.get(var) and (len(parts) < 3 or parts[2] in ("", "node")):
        raise Refused(f"{var} is not set: export {var}=https://<your {name} RPC> (the RPC of {network})")
    try:
        ctx = networks.parse_network_choice(network)
        provider = ctx.__enter__()
    except ApeException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        ids = re.search(r"chain ID '(\d+)', which does not match network chain ID '(\d+)'", first)
        if ids:
            raise Refused(f"the RPC of {network} serves chain {ids[1]}, not {ids[2]}: wrong RPC URL") from None
        if "network" in type(exc).__name__.lower() or "not found" in first.lower() or "unknown" in first.lower():
            raise Refused(f"unknown network {network!r}: {first} (see 'ape networks list')") from None
        raise Refused(f"cannot connect to {network}: {first}") from None
    except Exception as exc:  # a dead RPC surfaces as requests/web3 errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Refused(f"cannot connect to {network}: {first[:200]}") from None
    try:
        if not provider.is_connected:
            raise Refused(f"cannot connect to {network}: the RPC does not answer")
        try:
            _ = provider.chain_id  # the first real RPC call: fails on a dead or wrong endpoint
        except Exception as exc:
            raise Refused(f"cannot connect to {network}: {str(exc).splitlines()[0][:200]}") from None
        deployments.gas_headroom(provider)
        yield provider
    finally:
        try:
            ctx.__exit__(None, None, None)
        except Exception:  # pragma: no cover - disconnect errors are irrelevant here
            pass


def _is_local(provider) -> bool:
    return provider.network.name == "local" or provider.chain_id in LOCAL_CHAIN_IDS


def load_signer(alias: str | None, provider, yes: bool):
    """The deployer account; with `--yes` a keyfile account signs without prompts, unlocked with
    ape's `APE_ACCOUNTS_<alias>_PASSPHRASE` convention (nothing is read from a terminal)."""
    from ape import accounts

    if alias is None:
        if not _is_local(provider):
            raise Refused("name the deployer with --account ALIAS (see 'ape accounts list')")
        return accounts.test_accounts[0]
    try:
        account = deployments.load_account(alias)
    except (KeyError, ValueError, IndexError) as exc:
        msg = exc.args[0] if exc.args else alias
        raise Refused(
            f"unknown account alias {alias!r} ({msg}); see 'ape accounts list' or import it with "
            f"'ape accounts import {alias}'"
        ) from None
    except Exception as exc:
        raise Refused(f"cannot load account {alias!r}: {str(exc).splitlines()[0]}") from None
    if hasattr(account, "set_autosign"):  # a keyfile account
        var = f"APE_ACCOUNTS_{alias}_PASSPHRASE"
        if not yes:
            if not sys.stdin.isatty():
                raise Refused(f"no terminal to confirm each transaction: pass --yes (and set {var})")
            return account
        passphrase = os.environ.get(var)
        if not passphrase:
            raise Refused(f"--yes signs without prompts: set {var} to the passphrase of {alias!r}")
        try:
            account.set_autosign(True, passphrase=passphrase)
        except Exception:
            raise Refused(f"{var} does not unlock {alias!r} (wrong passphrase)") from None
    return account


def _token_info(provider, flag: str, address: str) -> tuple[str, int]:
    """(symbol, decimals) of an ERC-20, or a refusal when it has no code or no decimals()."""
    from eth_abi import decode

    if not bytes(provider.get_code(address)):
        raise Refused(f"{flag} {address} has no code on chain {provider.chain_id} (wrong network or address?)")

    def call(selector: str, types: list[str]):
        raw = bytes(provider.web3.eth.call({"to": address, "data": selector}))
        if len(raw) < 32:
            raise ValueError("no return data")
        return decode(types, raw)[0]

    try:
        decimals = int(call("0x313ce567", ["uint8"]))
    except Exception:
        raise Refused(f"{flag} {address} does not answer decimals(): not an ERC-20") from None
    try:
        symbol = str(call("0x95d89b41", ["string"])) or address[:8]
    except Exception:
        symbol = address[:8]
    return symbol, decimals


def _gas_price(provider) -> int:
    try:
        return int(provider.base_fee) * 2 + int(provider.priority_fee)
    except Exception:
        return int(provider.gas_price)


@click.command(name="run")
@network_option(help="ape network choice, e.g. ethereum:sepolia:node or ethereum:base-sepolia:node.")
@click.option("--account", "alias", default=None, help="ape account alias of the deployer (local: TEST::0).")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Sign every transaction without a prompt (passphrase from APE_ACCOUNTS_<alias>_PASSPHRASE).",
)
@click.option(
    "--admin",
    default=None,
    help="Existing governance contract (timelock/multisig) that receives every "
    "admin role. Default on public networks: a new GovernanceTimelock.",
)
@click.option("--admin-is-eoa", is_flag=True, help="Accept an EOA as --admin on a public network.")
@click.option("--proposer", "proposers", multiple=True, help="Timelock proposer and canceller (repeatable).")
@click.option("--executor", "executors", multiple=True, help="Timelock executor (repeatable; default: anyone).")
@click.option(
    "--timelock-delay",
    default=2 * 86400,
    show_default=True,
    type=int,
    help="Minimum delay (seconds) of every timelocked governance call.",
)
@click.option(
    "--treasury",
    default=None,
    help="Receiver of non-reward-token protocol fees (default: admin); slashed stake never goes here.",
)
@click.option("--test-tokens", is_flag=True, help="Deploy MockERC20 USDC and CDX first (local chains only).")
@click.option("--stake-token", default=None, help="Existing ERC-20 used for node stake.")
@click.option("--reward-token", default=None, help="Existing ERC-20 (e.g. USDC) for rewards and payments.")
@click.option(
    "--payment-token", "payment_tokens", multiple=True, help="Further ERC-20 the router accepts (repeatable)."
)
@click.option(
    "--pauser", "pausers", multiple=True, help="PAUSER_ROLE holder on every contract (repeatable; default: the admin)."
)
@click.option("--arbiter", "arbiters", multiple=True, help="ARBITER_ROLE holder (registry, licenses; repeatable).")
@click.option("--auditor", "auditors", multiple=True, help="AUDITOR_ROLE holder (Reputation; repeatable).")
@click.option("--reporter", "reporters", multiple=True, help="Proof-of-Access reporter (repeatable).")
@click.option("--epoch-length", default=3600, show_default=True, type=int, help="Seconds per epoch.")
@click.option("--dry-run", is_flag=True, help="Run the preflight, print the plan with gas estimates; send nothing.")
def deploy_command(
    network,
    alias,
    yes,
    admin,
    admin_is_eoa,
    proposers,
    executors,
    timelock_delay,
    treasury,
    test_tokens,
    stake_token,
    reward_token,
    payment_tokens,
    pausers,
    arbiters,
    auditors,
    reporters,
    epoch_length,
    dry_run,
):
    """Deploy every CodexField contract, wire it, hand the roles over, write the address book and
    verify it (idempotent: a rerun finishes what a stopped run left)."""
    admin = _address("--admin", admin)
    treasury = _address("--treasury", treasury)
    stake_token = _address("--stake-token", stake_token)
    reward_token = _address("--reward-token", reward_token)
    payment_tokens = [_address("--payment-token", t) for t in payment_tokens]
    lists = {}
    for flag, values in (
        ("--proposer", proposers),
        ("--executor", executors),
        ("--pauser", pausers),
        ("--arbiter", arbiters),
        ("--auditor", auditors),
        ("--reporter", reporters),
    ):
        lists[flag] = [_address(flag, v) for v in values]

    with connect(network) as provider:
        local = _is_local(provider)
        # 1. The chain is the network's.
        expected = getattr(provider.network, "chain_id", None)
        if not local and expected and provider.chain_id != expected:
            raise Refused(f"the RPC of {network} serves chain {provider.chain_id}, not {expected}: wrong RPC URL")
        # 2. Flags that only make sense on some networks.
        if test_tokens and not local:
            raise Refused(
                "--test-tokens deploys mintable MockERC20s: refused off local chains; pass --stake-token "
                "and --reward-token"
            )
        if not test_tokens and (stake_token is None or reward_token is None):
            raise Refused("pass --stake-token and --reward-token (existing ERC-20s), or --test-tokens on a local chain")
        if admin is not None:
            if not bytes(provider.get_code(admin)) and not local and not admin_is_eoa:
                raise Refused(
                    f"--admin {admin} is not a contract: use a timelock or multisig, or confirm with --admin-is-eoa"
                )
        elif not local and not lists["--proposer"]:
            raise Refused(
                "no --admin: the deploy creates a GovernanceTimelock as admin; name at least one "
                "--proposer (e.g. your multisig), or pass --admin"
            )
        # 3. Tokens answer as ERC-20s; they are recorded in the book under their symbols.
        tokens: dict[str, dict[str, Any]] = {}
        for flag, addr in [("--stake-token", stake_token), ("--reward-token", reward_token)] + [
            ("--payment-token", t) for t in payment_tokens
        ]:
            if addr is None or any(i["address"] == addr for i in tokens.values()):
                continue
            symbol, decimals = _token_info(provider, flag, addr)
            key = symbol if symbol not in tokens else f"{symbol}-{addr[2:8]}"
            tokens[key] = {"address": addr, "decimals": decimals}
        # 4. The deployer can sign (no prompt with --yes) and pay.
        account = load_signer(alias, provider, yes)
        config = DeployConfig(
            admin=admin,
            treasury=treasury,
            test_tokens=test_tokens,
            stake_token=stake_token,
            reward_token=reward_token,
            reporters=lists["--reporter"],
            pausers=lists["--pauser"],
            arbiters=lists["--arbiter"],
            auditors=lists["--auditor"],
            epoch_length=epoch_length,
            extra_tokens=tokens,
            timelock_proposers=lists["--proposer"],
            timelock_executors=lists["--executor"],
            timelock_delay=timelock_delay,
        )
        plan_log = click.echo if dry_run else (lambda _m: None)
        try:
            plan = _plan(account, config, plan_log)
        except deployments.AddressBookError as exc:
            raise Refused(str(exc)) from None
        gas = plan["deploy_gas"] + plan["steps"] * WIRING_STEP_GAS_BOUND
        price = _gas_price(provider)
        cost, balance = gas * price, int(account.balance)
        click.echo(
            f"preflight: chain {provider.chain_id} ✓; deployer {account.address} balance {balance / 1e18:.6f} "
            f"ETH; estimated at most {gas:,} gas × {price / 1e9:.3f} gwei = {cost / 1e18:.6f} ETH"
        )
        if admin is None and not local:
            click.echo(
                f"preflight: no --admin: a {TIMELOCK} (delay {timelock_delay}s, proposers "
                f"{', '.join(lists['--proposer'])}) becomes the admin"
            )
        if not local and not lists["--pauser"]:
            click.echo("WARNING: no --pauser: only the admin (the timelock, after its delay) can pause")
        if balance < cost:
            raise Refused(
                f"{account.address} holds {balance / 1e18:.6f} ETH but the deployment may cost up to "
                f"{cost / 1e18:.6f} ETH: fund it first (nothing was sent)"
            )
        if dry_run:
            click.echo("dry run: nothing was sent")
            return
        # 5. Deploy, wire, hand over, then verify what the chain says.
        try:
            book = deploy_system(account, config, log=click.echo).book
        except deployments.AddressBookError as exc:
            raise Refused(str(exc)) from None
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise Refused(
                f"deploy stopped: {first[:300]} — fix the cause and rerun the same command "
                "(the address book records progress; nothing done is resent)"
            ) from None
        if verify(book, log=click.echo):
            raise Refused("the chain does not match the address book (see above)")


def _plan(account, config: DeployConfig, log) -> dict[str, int]:
    """The dry run of `deploy_system`: gas of the deployments and the number of steps."""
    lines: list[str] = []

    def keep(line: str) -> None:
        lines.append(line)
        log(line)

    deploy_system(account, config, dry_run=True, log=keep)
    deploy_gas = 0
    for line in lines:
        if "would deploy" in line and "~" in line:
            try:
                deploy_gas += int(line.rsplit("~", 1)[1].split()[0].replace(",", ""))
            except ValueError:
                pass
    steps = sum("would wire" in line for line in lines)
    return {"deploy_gas": deploy_gas, "steps": steps}


@click.command(name="verify")
@network_option()
def verify_command(network):
    """Read the chain: print the contracts, the wiring and who holds every role; exit 1 on any
    deviation from the address book and its recorded handover."""
    with connect(network) as provider:
        net = provider.network
        try:
            book = deployments.load(net.ecosystem.name, net.name)
        except deployments.AddressBookError as exc:
            raise Refused(str(exc)) from None
        if book.chain_id != provider.chain_id:
            raise Refused(f"{book.path} is for chain {book.chain_id}, the RPC serves chain {provider.chain_id}")
        if verify(book, log=click.echo):
            raise Refused("the chain does not match the address book (see above)")


@click.group(name="deploy")
def deploy_group() -> None:
    """Deploy CodexField (`run`, also `ape run deploy`) and check a deployment (`verify`)."""


deploy_group.add_command(deploy_command)
deploy_group.add_command(verify_command)

__all__ = ["deploy_command", "verify_command", "deploy_group", "ZERO_ADDRESS"]
