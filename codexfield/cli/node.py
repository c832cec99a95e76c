"""`codexfield node register|stake|unbond|withdraw|claim|status` (docs/cli.md), beside
`codexfield node serve` (codexfield/cli/gateway.py, the gateway).

    codexfield node register --endpoint https://node1.example --services compute --region eu-west \
        --stake "100 CDX" --account node1
    codexfield node stake "50 CDX" --account node1
    codexfield node unbond "20 CDX" --account node1      # starts the thaw; prints when it ends
    codexfield node withdraw --account node1             # after the thaw: the unbonded stake
    codexfield node claim --token USDC --account node1   # metered earnings and PoA rewards
    codexfield node status 0xNODE --json
"""

from __future__ import annotations

import time
from typing import Any

import click

from codexfield.cli.errors import CliError
from codexfield.cli.gateway import node_group
from codexfield.cli.options import Cx, chain_options

STATUS = {0: "none", 1: "active", 2: "jailed", 3: "ejected"}

__all__ = ["node_group"]


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"


def node_json(cx: Cx, address: str) -> dict[str, Any]:
    from codexfield.poa import SERVICE_BITS

    staking = cx.cf.staking
    n = staking.node(address)
    jails, thaw_end, recent, _ = (int(x) for x in staking.node_extra(address))
    stake_token = str(staking.stake_token())
    reward_token = str(staking.reward_token())
    return {
        "node": str(address),
        "status": STATUS.get(int(n.status), str(int(n.status))),
        "stake": cx.fmt(int(n.stake), stake_token),
        "unbonding": cx.fmt(int(n.unbonding), stake_token),
        "thaw_end": thaw_end,
        "recent_stake": cx.fmt(recent, stake_token),
        "services": [k for k, bit in SERVICE_BITS.items() if int(n.services) & bit],
        "reliability": int(n.reliability),
        "strikes": int(n.strikes),
        "jails": jails,
        "jailed_until": int(n.jailed_until),
        "rewards_claimable": cx.fmt(int(staking.claimable(address)), reward_token),
        "min_stake": cx.fmt(int(staking.params().min_stake), stake_token),
    }


def _status_lines(d: dict[str, Any]) -> list[str]:
    lines = [
        f"node {d['node']} ({d['status']}), services {','.join(d['services']) or '-'}",
        f"  stake      {d['stake']} (min {d['min_stake']})",
        f"  rewards    {d['rewards_claimable']} claimable",
    ]
    if not d["unbonding"].startswith("0 "):
        lines.append(f"  unbonding  {d['unbonding']}, thaw ends {_when(d['thaw_end'])}")
    return lines


def _approve_stake(cx: Cx, amount: int) -> None:
    token = str(cx.cf.staking.stake_token())
    cx.require_balance(token, amount)
    erc20 = cx.cf.token(token)
    if int(erc20.allowance(cx.sender, cx.cf.staking)) < amount:
        erc20.approve(cx.cf.staking, amount, sender=cx.sender)


def _status_of(cx: Cx) -> int:
    return int(cx.cf.staking.node(cx.sender).status)


@node_group.command("register")
@click.option("--endpoint", required=True, help="The node's public URL.")
@click.option("--services", default="compute", show_default=True, help="compute,storage,edge,tee,transfer")
@click.option("--region", default="local", show_default=True, help="Short region code (at most 8 bytes).")
@click.option("--tee-signer", default=None, help="TEE attestation key (with the tee service).")
@click.option("--stake", "stake_text", default=None, help="Initial stake, e.g. '100 CDX' (default: the minimum).")
@chain_options(send=True)
def register_command(
    cx: Cx, endpoint: str, services: str, region: str, tee_signer: str | None, stake_text: str | None
) -> None:
    """Register the sender as a node in AccessStaking with a stake (approves it first)."""
    from codexfield.poa import parse_services

    try:
        mask = parse_services(services)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if len(region.encode()) > 8:
        raise CliError(f"--region {region!r} is longer than 8 bytes")
    if mask & 8 and not tee_signer:
        raise CliError("the tee service needs --tee-signer ADDRESS")
    with cx.session():
        staking = cx.cf.staking
        token = str(staking.stake_token())
        min_stake = int(staking.params().min_stake)
        amount = min_stake if stake_text is None else cx.amount(stake_text, token)[0]
        if _status_of(cx) != 0:
            raise CliError(
                f"{cx.sender.address} is already registered ({STATUS.get(_status_of(cx))}); "
                f"add stake with 'codexfield node stake'"
            )
        if amount < min_stake:
            raise CliError(f"stake {cx.fmt(amount, token)} is below the minimum {cx.fmt(min_stake, token)}")
        cx.confirm(f"register {endpoint} with {cx.fmt(amount, token)}")
        _approve_stake(cx, amount)
        staking.register_node(
            endpoint, mask, region.encode().ljust(8, b"\0"), tee_signer or "0x" + "00" * 20, amount, sender=cx.sender
        )
        d = node_json(cx, cx.sender.address)
    cx.out(d, _status_lines(d))


@node_group.command("stake")
@click.argument("amount")
@chain_options(send=True)
def stake_command(cx: Cx, amount: str) -> None:
    """Add AMOUNT (e.g. '50 CDX') to the sender's bonded stake."""
    with cx.session():
        token = str(cx.cf.staking.stake_token())
        raw = cx.amount(amount, token)[0]
        if _status_of(cx) == 0:
            raise CliError(f"{cx.sender.address} is not a registered node; run 'codexfield node register' first")
        if raw == 0:
            raise CliError("the amount must be above zero")
        cx.confirm(f"add {cx.fmt(raw, token)} of stake")
        _approve_stake(cx, raw)
        cx.cf.staking.add_stake(raw, sender=cx.sender)
        d = node_json(cx, cx.sender.address)
    cx.out(d, _status_lines(d))


@node_group.command("unbond")
@click.argument("amount")
@chain_options(send=True)
def unbond_command(cx: Cx, amount: str) -> None:
    """Start unbonding AMOUNT of stake; it can be withdrawn when the thaw ends ('node withdraw')."""
    with cx.session():
        staking = cx.cf.staking
        token = str(staking.stake_token())
        raw = cx.amount(amount, token)[0]
        n = staking.node(cx.sender)
        if int(n.status) == 0:
            raise CliError(f"{cx.sender.address} is not a registered node")
        if raw == 0 or raw > int(n.stake):
            raise CliError(f"unbond between 0 and the bonded {cx.fmt(int(n.stake), token)}")
        left, min_stake = int(n.stake) - raw, int(staking.params().min_stake)
        if left and left < min_stake:
            raise CliError(
                f"that leaves {cx.fmt(left, token)} bonded, below the minimum {cx.fmt(min_stake, token)}; "
                f"unbond everything or less"
            )
        cx.confirm(f"unbond {cx.fmt(raw, token)}")
        staking.request_unbond(raw, sender=cx.sender)
        d = node_json(cx, cx.sender.address)
    cx.out(d, [f"unbonding {d['unbonding']}; withdraw after {_when(d['thaw_end'])} with 'codexfield node withdraw'"])


@node_group.command("withdraw")
@chain_options(send=True)
def withdraw_command(cx: Cx) -> None:
    """Withdraw the sender's thawed (unbonded) stake."""
    from ape import chain

    with cx.session():
        staking = cx.cf.staking
        token = str(staking.stake_token())
        d = node_json(cx, cx.sender.address)
        if d["unbonding"].startswith("0 "):
            raise CliError("nothing is unbonding; start with 'codexfield node unbond AMOUNT'")
        if int(chain.pending_timestamp) < d["thaw_end"]:
            raise CliError(f"{d['unbonding']} is still thawing until {_when(d['thaw_end'])}")
        cx.confirm(f"withdraw {d['unbonding']}")
        receipt = staking.withdraw_unbonded(sender=cx.sender)
        amount = int(receipt.return_value)
    cx.out({"withdrawn": cx.fmt(amount, token), "withdrawn_raw": str(amount)}, f"withdrew {cx.fmt(amount, token)}")


@node_group.command("claim")
@click.option("--token", default="USDC", show_default=True, help="Token of the metered earnings.")
@click.option("--to", "recipient", default=None, help="Receiver (default: the node).")
@chain_options(send=True)
def claim_command(cx: Cx, token: str, recipient: str | None) -> None:
    """Claim the node's metered earnings (UsageMeter) and its PoA rewards (AccessStaking)."""
    with cx.session():
        node = cx.sender
        earned = int(cx.cf.meter.node_balance(node, cx.cf.token_address(token)))
        staking = cx.cf.staking
        reward_token = str(staking.reward_token())
        rewards = int(staking.claimable(node))
        if earned == 0 and rewards == 0:
            raise CliError(f"{node.address} has no earnings in {cx.symbol(token)} and no rewards to claim")
        cx.confirm("claim node earnings and rewards")
        if earned:
            cx.cf.meter.claim_node(cx.cf.token_address(token), recipient or node, sender=node)
        if rewards:
            staking.claim_rewards(node, sender=node)
    cx.out(
        {"earnings": cx.fmt(earned, token), "rewards": cx.fmt(rewards, reward_token), "to": str(recipient or node)},
        f"claimed {cx.fmt(earned, token)} earnings and {cx.fmt(rewards, reward_token)} rewards",
    )


@node_group.command("status")
@click.argument("address", required=False)
@click.option("--account", help="Show this account's node (instead of ADDRESS).")
@chain_options(send=False)
def status_command(cx: Cx, address: str | None, account: str | None) -> None:
    """Show a node's status, stake, unbonding thaw and claimable rewards."""
    with cx.session():
        if address is None:
            if not account:
                raise CliError("give the node ADDRESS or --account")
            cx.account_alias = account
            address = cx.sender.address
        d = node_json(cx, address)
    cx.out(d, _status_lines(d))
