"""`codexfield escrow deposit|withdraw request|withdraw complete|balance` (docs/cli.md): the
UsageMeter escrow metered usage is paid from.

    codexfield escrow deposit "10 USDC" --account me
    codexfield escrow withdraw request "4 USDC" --account me    # starts the thaw; prints when it ends
    codexfield escrow withdraw complete --token USDC --account me
    codexfield escrow balance 0xME --token USDC --json
"""

from __future__ import annotations

import time
from typing import Any

import click

from codexfield.cli.errors import CliError
from codexfield.cli.options import Cx, chain_options

TOKEN = click.option(
    "--token", default="USDC", show_default=True, help="Token symbol from the address book, or address."
)


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"


@click.group("escrow")
def escrow_group() -> None:
    """Escrow for metered usage: deposit, withdraw after the thaw, balance."""


def balance_json(cx: Cx, who: str, token: str) -> dict[str, Any]:
    from ape import chain

    meter = cx.cf.meter
    address = cx.cf.token_address(token)
    w = meter.withdrawals(who, address)
    pending, ready_at = int(w.amount), int(w.ready_at)
    return {
        "account": str(who),
        "token": cx.symbol(token),
        "escrow": cx.fmt(int(meter.escrow(who, address)), token),
        "withdrawal": cx.fmt(pending, token),
        "ready_at": ready_at if pending else 0,
        "ready": bool(pending) and int(chain.pending_timestamp) >= ready_at,
        "thaw_seconds": int(meter.withdrawal_thaw()),
    }


def _lines(d: dict[str, Any]) -> list[str]:
    lines = [f"escrow of {d['account']}: {d['escrow']}"]
    if not d["withdrawal"].startswith("0 "):
        lines.append(
            f"  withdrawal {d['withdrawal']} {'ready now' if d['ready'] else 'thaws until ' + _when(d['ready_at'])}"
        )
    return lines


@escrow_group.command("deposit")
@click.argument("amount")
@click.option("--for", "beneficiary", default=None, help="Whose escrow (default: the sender's).")
@chain_options(send=True)
def deposit_command(cx: Cx, amount: str, beneficiary: str | None) -> None:
    """Deposit AMOUNT (e.g. '10 USDC') into escrow (approves it first)."""
    with cx.session():
        raw, symbol = cx.amount(amount)
        if raw == 0:
            raise CliError("the amount must be above zero")
        if cx.cf.meter.paused():
            raise CliError("the meter is paused: deposits are stopped (withdrawals still work)")
        cx.require_balance(symbol, raw)
        cx.confirm(f"deposit {cx.fmt(raw, symbol)}")
        cx.cf.deposit(symbol, raw, beneficiary, sender=cx.sender)
        d = balance_json(cx, beneficiary or cx.sender.address, symbol)
    cx.out(d, _lines(d))


@escrow_group.group("withdraw")
def withdraw_group() -> None:
    """Withdraw escrow: `request` starts the thaw, `complete` pays it out after."""


@withdraw_group.command("request")
@click.argument("amount")
@chain_options(send=True)
def request_command(cx: Cx, amount: str) -> None:
    """Start the thaw of AMOUNT of the sender's escrow ('0 USDC' cancels a pending request)."""
    with cx.session():
        raw, symbol = cx.amount(amount)
        have = int(cx.cf.meter.escrow(cx.sender, cx.cf.token_address(symbol)))
        if raw > have:
            raise CliError(f"the escrow holds {cx.fmt(have, symbol)}, less than {cx.fmt(raw, symbol)}")
        cx.confirm(f"request a withdrawal of {cx.fmt(raw, symbol)}")
        cx.cf.meter.request_withdrawal(cx.cf.token_address(symbol), raw, sender=cx.sender)
        d = balance_json(cx, cx.sender.address, symbol)
    cx.out(
        d,
        _lines(d)
        + ([f"complete it after the thaw with 'codexfield escrow withdraw complete --token {symbol}'"] if raw else []),
    )


@withdraw_group.command("complete")
@TOKEN
@chain_options(send=True)
def complete_command(cx: Cx, token: str) -> None:
    """Pay out the sender's thawed withdrawal."""
    with cx.session():
        d = balance_json(cx, cx.sender.address, token)
        if d["withdrawal"].startswith("0 "):
            raise CliError(
                f"no withdrawal requested in {d['token']}; start one with 'codexfield escrow withdraw request AMOUNT'"
            )
        if not d["ready"]:
            raise CliError(f"the withdrawal of {d['withdrawal']} thaws until {_when(d['ready_at'])}")
        cx.confirm(f"withdraw {d['withdrawal']}")
        receipt = cx.cf.meter.withdraw(cx.cf.token_address(token), cx.sender.address, sender=cx.sender)
        paid = int(receipt.return_value)
        d = balance_json(cx, cx.sender.address, token)
        d["withdrawn"] = cx.fmt(paid, token)
    cx.out(d, [f"withdrew {d['withdrawn']}"] + _lines(d))


@escrow_group.command("balance")
@click.argument("address", required=False)
@TOKEN
@click.option("--account", help="Show this account's escrow (instead of ADDRESS).")
@chain_options(send=False)
def balance_command(cx: Cx, address: str | None, token: str, account: str | None) -> None:
    """Show the escrow of ADDRESS (or --account) and any pending withdrawal with its thaw."""
    with cx.session():
        if address is None:
            if not account:
                raise CliError("give the ADDRESS or --account")
            cx.account_alias = account
            address = cx.sender.address
        d = balance_json(cx, address, token)
    cx.out(d, _lines(d))
