"""One error handler for every `codexfield` command: a failure is one line on stderr and a
non-zero exit, never a traceback (set CODEXFIELD_DEBUG=1 to see it).

`describe(exc)` turns what the libraries raise (ape, web3, the address book, LDL, amounts)
into "what went wrong; what to do".
"""

from __future__ import annotations

import os
import traceback

import click


class CliError(click.ClickException):
    """A user-facing failure: `message` is the whole line printed."""

    exit_code = 1


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def describe(exc: BaseException) -> str:
    """One line for `exc`."""
    name = type(exc).__name__
    text = _first_line(str(exc))
    try:
        from ape import exceptions as ape_exc
    except ImportError:  # pragma: no cover - the core install has ape
        ape_exc = None
    if ape_exc is not None:
        if isinstance(exc, ape_exc.ContractLogicError):
            reason = exc.message or text or "no reason given"
            return f"the chain refused: {reason} (nothing was sent)"
        if isinstance(
            exc, (ape_exc.EcosystemNotFoundError, ape_exc.NetworkNotFoundError, ape_exc.ProviderNotFoundError)
        ):
            return f"unknown network: {text} (use e.g. ethereum:local:foundry or ethereum:sepolia:node)"
        if isinstance(exc, ape_exc.ProviderNotConnectedError) or (
            isinstance(exc, ape_exc.ProviderError) and "node found" in text
        ):
            return f"cannot reach the RPC: {text} Is the node running and the URL right?"
        if isinstance(exc, ape_exc.OutOfGasError):
            return f"out of gas: {text}"
        if isinstance(exc, ape_exc.TransactionError):
            if "insufficient funds" in text.lower() or "funds" in text.lower():
                return f"the sender cannot pay for gas: {text} (fund the account and retry)"
            return f"transaction failed: {text}"
        if isinstance(exc, ape_exc.ApeException):
            return f"{text}"
    if isinstance(exc, KeyError) and "No account with alias" in text:
        return (
            f"unknown account alias: {text.strip(chr(34))} List them with 'ape accounts list', import one with "
            f"'ape accounts import NAME', or use TEST:<n> on a local chain"
        )
    if isinstance(exc, (ConnectionError, OSError)) and "onnection" in text:
        return f"cannot reach the RPC ({text}); is the node running?"
    if "insufficient funds" in text.lower():
        return f"the sender cannot pay for gas: {text} (fund the account and retry)"
    return (
        f"{text or name}"
        if name
        in {
            "AddressBookError",
            "ContractTypesError",
            "AmountError",
            "ValueError",
            "LookupError",
            "TermsNotFound",
            "PackError",
            "ManifestError",
        }
        else f"{name}: {text}"
    )


def handle(exc: BaseException) -> click.ClickException:
    """The ClickException to raise for `exc` (printing the traceback first when debugging)."""
    if os.environ.get("CODEXFIELD_DEBUG"):
        traceback.print_exception(exc)
    return CliError(describe(exc))
