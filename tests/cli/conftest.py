"""The deployed system (codexfield.deploy) with its address book in a file, and `cli(...)`:
the `codexfield` command run in-process against it (CliRunner, the live test provider)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from codexfield.cli import main
from codexfield.sdk import CodexField


@pytest.fixture(scope="module")
def book(system):
    return system.book


@pytest.fixture(scope="module")
def book_file(book, tmp_path_factory):
    path = tmp_path_factory.mktemp("book") / "book.json"
    path.write_text(json.dumps(book.to_json()))
    return path


@pytest.fixture(scope="module")
def cf(book, admin):
    return CodexField(book, account=admin)


@pytest.fixture(scope="module")
def network(networks):
    p = networks.provider
    return f"{p.network.ecosystem.name}:{p.network.name}:{p.name}"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


@pytest.fixture(scope="module")
def cli(book_file, network, accounts, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")

    def run(
        *args: str, account=None, net: str | None = None, book: str | None = None, book_flag: bool = True
    ) -> Result:
        """`book_flag=False` for commands without the shared options: the book goes by
        $CODEXFIELD_ADDRESS_BOOK (which every command reads) instead of --book."""
        argv = list(args) if len(args) != 1 else shlex.split(args[0])
        argv += ["--network", net or network] + (["--book", str(book or book_file)] if book_flag else [])
        if account is not None:
            argv += [
                "--account",
                account if isinstance(account, str) else f"TEST:{[a.address for a in accounts].index(account.address)}",
            ]
        env = {"CODEXFIELD_STORE": str(store), "CODEXFIELD_ADDRESS_BOOK": str(book or book_file)}
        r = CliRunner(env=env, mix_stderr=False).invoke(main, argv, catch_exceptions=False)
        return Result(r.exit_code, r.stdout, r.stderr)

    return run


@pytest.fixture
def no_tx(chain):
    """Assert a block of code sends no transaction from `who` (its nonce is unchanged)."""

    class Guard:
        def __init__(self, *who):
            self.who = who

        def __enter__(self):
            self.before = [w.nonce for w in self.who]
            self.height = chain.blocks.height

        def __exit__(self, *exc):
            assert [w.nonce for w in self.who] == self.before, "a transaction was sent"
            assert chain.blocks.height == self.height, "a block was mined"

    return Guard
