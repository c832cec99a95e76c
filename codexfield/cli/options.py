"""The options every chain command shares, and the session they open.

    @capsule_group.command("show")
    @click.argument("capsule_id", type=int)
    @chain_options(send=False)
    def show(cx: Cx, capsule_id: int): ...

`chain_options(send=...)` adds `--network` (ape choice, default ethereum:local:foundry),
`--book` (an address book file; also $CODEXFIELD_ADDRESS_BOOK), `--json`, and for commands that
send transactions `--account` (ape alias or TEST:<n>) and `--yes` (no confirmation prompt; on
local chains there is none). The command gets a `Cx` as its first argument.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from codexfield import amounts
from codexfield.cli.errors import CliError
from codexfield.deployments import DEFAULT_NETWORK

# Networks whose RPC URL ape-config.yaml takes from the environment.
RPC_ENV = {"sepolia": "SEPOLIA_RPC_URL", "base-sepolia": "BASE_SEPOLIA_RPC_URL"}
LOCAL = {"local"}


class Cx:
    """What a chain command works with: the options, then (inside `session()`) the address
    book, the SDK facade, the sender and token formatting."""

    def __init__(self, network: str, book: str | None, as_json: bool, account: str | None, yes: bool):
        self.network, self.book_path, self.as_json, self.account_alias, self.yes = network, book, as_json, account, yes
        self.book: Any = None
        self.cf: Any = None
        self._sender: Any = None
        self._token_meta: dict[str, tuple[str, int]] = {}

    # -- session --------------------------------------------------------------------------

    def check_network(self) -> None:
        """Refuse, before connecting, a network whose RPC URL is unset."""
        parts = self.network.split(":")
        if len(parts) >= 2 and parts[1] in RPC_ENV and not parts[1].startswith("http"):
            var = RPC_ENV[parts[1]]
            if not os.environ.get(var):
                raise CliError(
                    f"{var} is not set: export {var}=https://... (an RPC endpoint for {parts[0]}:{parts[1]}) and retry"
                )

    @contextmanager
    def session(self) -> Iterator[Cx]:
        """Connect to the network and load its address book (the SDK facade is `self.cf`)."""
        from codexfield import deployments
        from codexfield.sdk import CodexField

        self.check_network()
        _ape_logs_to_stderr()
        previous = os.environ.get(deployments.ADDRESS_BOOK_ENV)
        if self.book_path:
            os.environ[deployments.ADDRESS_BOOK_ENV] = self.book_path
        try:
            with deployments.connected(self.network) as book:
                self.book = book
                self.cf = CodexField(book)
                yield self
        finally:
            if self.book_path:
                if previous is None:
                    os.environ.pop(deployments.ADDRESS_BOOK_ENV, None)
                else:
                    os.environ[deployments.ADDRESS_BOOK_ENV] = previous

    @property
    def is_local(self) -> bool:
        from ape import networks

        return networks.provider.network.name in LOCAL

    # -- sending --------------------------------------------------------------------------

    @property
    def sender(self) -> Any:
        if self._sender is None:
            from codexfield.deployments import load_account

            if not self.account_alias:
                raise CliError("this command sends a transaction: give --account ALIAS (or TEST:<n> on a local chain)")
            try:
                self._sender = load_account(self.account_alias)
            except ValueError as exc:
                raise CliError(str(exc)) from None
            if not self.is_local and hasattr(self._sender, "set_autosign"):
                pass
        return self._sender

    def confirm(self, what: str) -> None:
        """Ask before sending `what` (not on local chains, not with --yes)."""
        if self.yes or self.is_local:
            return
        if not click.confirm(f"{what} from {self.sender.address} on {self.network}?", default=False, err=True):
            raise CliError("cancelled; nothing was sent (add --yes to skip this prompt)")

    def require_balance(self, token: str, amount: int) -> None:
        """Refuse, before sending, to spend more of `token` than the sender holds."""
        have = int(self.cf.token(token).balanceOf(self.sender))
        if have < amount:
            raise CliError(
                f"{self.sender.address} holds {self.fmt(have, token)}, needs {self.fmt(amount, token)}; "
                f"fund the account first"
            )

    # -- tokens ---------------------------------------------------------------------------

    def token_meta(self, token: str) -> tuple[str, int]:
        """(symbol, decimals) of a symbol from the book or a token address."""
        key = str(token).lower()
        if key not in self._token_meta:
            tokens = self.book.tokens
            for symbol, t in tokens.items():
                if symbol.lower() == key or str(t["address"]).lower() == key:
                    self._token_meta[key] = (symbol, int(t["decimals"]))
                    break
            else:
                if not key.startswith("0x"):
                    raise amounts.AmountError(f"unknown token {token!r}; known: {', '.join(sorted(tokens)) or 'none'}")
                erc20 = self.cf.token(token)
                self._token_meta[key] = (str(erc20.symbol()), int(erc20.decimals()))
        return self._token_meta[key]

    def fmt(self, raw: int, token: str) -> str:
        symbol, decimals = self.token_meta(token)
        return amounts.fmt(int(raw), symbol, decimals)

    def amount(self, text: str, token: str | None = None) -> tuple[int, str]:
        """'<number> <SYMBOL>' -> (raw units, symbol); with `token`, the symbol must be that one."""
        symbol = self.token_meta(token)[0] if token else None
        try:
            return amounts.parse(text, self.book.tokens, default_symbol=symbol)
        except amounts.AmountError as exc:
            raise CliError(str(exc)) from None

    def symbol(self, token: str) -> str:
        return self.token_meta(token)[0]

    # -- output ---------------------------------------------------------------------------

    def out(self, data: dict[str, Any], text: str | list[str]) -> None:
        """Print `data` as one JSON object with --json, else the human `text`."""
        if self.as_json:
            click.echo(json.dumps(data, sort_keys=True, default=_json_default))
        else:
            click.echo(text if isinstance(text, str) else "\n".join(text))


def _ape_logs_to_stderr() -> None:
    """ape logs transactions ("INFO: Confirmed 0x...") on stdout; a CLI keeps stdout for its
    own output (one JSON object with --json), so ape's log lines go to stderr, and only its
    warnings and errors unless CODEXFIELD_DEBUG is set (a failure stays one line)."""
    from ape.logging import ClickHandler, logger

    if not os.environ.get("CODEXFIELD_DEBUG"):
        logger.set_level("WARNING")
    for handler in logger._logger.handlers:
        if isinstance(handler, ClickHandler):
            handler.echo_kwargs = {level: {"err": True} for level in ("error", "warning", "success", "info", "debug")}


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if hasattr(value, "address"):
        return str(value.address)
    return str(value)


def network_option(
    default: str | None = DEFAULT_NETWORK, help: str = "ape network choice.", **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The one declaration of `--network`: every command that connects takes it from here and
    varies only its help line, its default (None: the connected network) and its envvar."""
    return click.option("--network", default=default, show_default=default is not None, help=help, **kwargs)


def chain_options(send: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the shared options to a command and pass it a `Cx` first."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, network: str, book: str | None, as_json: bool, **kwargs: Any) -> Any:
            account, yes = (kwargs.pop("account"), kwargs.pop("yes")) if send else (None, False)
            return f(Cx(network, book, as_json, account, yes), *args, **kwargs)

        opts = [
            network_option(
                envvar="CODEXFIELD_NETWORK",
                help="ape network choice (ecosystem:network:provider), or $CODEXFIELD_NETWORK.",
            ),
            click.option(
                "--book",
                type=click.Path(dir_okay=False),
                envvar="CODEXFIELD_ADDRESS_BOOK",
                help="Address book JSON (default: deployments/<ecosystem>-<network>.json).",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print one JSON object (shapes: docs/cli.md)."),
        ]
        if send:
            opts += [
                click.option(
                    "--account",
                    envvar="CODEXFIELD_ACCOUNT",
                    help="ape account alias, or TEST:<n> for a local test account.",
                ),
                click.option("--yes", is_flag=True, help="Send without asking (there is no prompt on local chains)."),
            ]
        for opt in reversed(opts):
            wrapper = opt(wrapper)
        return wrapper

    return decorate
