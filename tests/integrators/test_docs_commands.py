"""Every command in README.md and docs/*.md is accounted for by a test that runs it.

`commands()` collects the command lines of every fenced block (console `$ ` lines included,
`\\` continuations joined). Each must match one row of RUN_BY: (pattern, test file, a string the
file contains where it runs the command), or of NOT_RUN with the reason no test here can run
it. A new command in the docs fails this test until it is classified. Every `codexfield ...`
command is also parsed by the real click tree (verb path and option names must exist).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from codexfield.cli import main

ROOT = Path(__file__).resolve().parents[2]
PREFIX = re.compile(r"^(\$ )?(codexfield |\.venv/bin/|ape |make |python |anvil |silverback |ipfs (add|dag)|export )")

RUN_BY = [
    (
        r"^codexfield (capsule|license (purchase|credential|revoke)|escrow|royalties|node (register|stake|unbond|status|"
        r"claim)|rate|attest)\b|^codexfield license (publish|show) (terms\.ldl --account|1$)",
        "tests/cli/test_docs_cli.py",
        "test_walkthrough_runs_and_json_shapes_match",
    ),
    (r"^make demo$", "tests/integration/test_flow.py", "run_flow"),
    (
        r"^(\.venv/bin/)?ape run deploy --network ethereum:local:foundry --test-tokens$",
        "tests/integrators/test_plain_shell.py",
        '"run", "deploy", "--network", "ethereum:local:foundry"',
    ),
    (
        r"^\.venv/bin/python examples/quickstart\.py$",
        "tests/integrators/test_plain_shell.py",
        '"examples/quickstart.py"',
    ),
    (r"^\.venv/bin/codexfield --help$", "tests/integrators/test_plain_shell.py", '"codexfield"), "--help"'),
    (r"^ape run deploy .*--dry-run$", "tests/integration/test_deploy.py", "dry_run=True"),
    (
        r"^(\.venv/bin/)?ape run deploy --network ethereum:sepolia:node",
        "tests/integration/test_deploy_testnet.py",
        "dry",
    ),
    (r"^(\.venv/bin/)?codexfield deploy verify", "tests/integration/test_deploy_testnet.py", "verify"),
    (r"^codexfield did (id|resolve)", "tests/offchain/test_did.py", "did_command"),
    (r"^codexfield index (migrate|run|status)", "tests/indexer/test_cli.py", "index_group"),
    (r"^codexfield license (compile|publish|show)", "tests/integration/test_ldl_chain.py", "license_group"),
    (r"^codexfield (pack|verify) ", "tests/offchain/test_docs_ipfs.py", "console_block"),
    (r"^ipfs (add|dag import)", "tests/offchain/test_docs_ipfs.py", "ipfs_add_command"),
    (r"^codexfield (node serve|invoke|keeper finalizer)", "tests/integration/test_gateway.py", "keeper_group"),
    (r"^codexfield keeper (settler|prober)", "tests/integration/test_keepers.py", "keeper"),
    (r"^codexfield royalty (breakdown|settle)", "tests/offchain/test_royalty_planner.py", "royalty_group"),
]
NOT_RUN = {
    r"^make test$": "the suite itself",
    r"^export ": "environment set-up, no command",
    r"^ape accounts import": "interactive (passphrase prompt)",
    r"^ape run deploy --network ethereum:local:http": "needs the long-running anvil of the line before; the same "
    "deploy runs in tests/integrators/test_plain_shell.py",
    r"^anvil ": "a long-running chain; the tests start anvil through ape-foundry",
    r"^silverback run": "silverback's long-running runner; its bots' run_once is tested in tests/integration/test_keepers.py",
    r"^codexfield index serve": "a long-running server; the app is tested in tests/indexer/test_api.py",
    r"^python scripts/bench_indexer.py": "a benchmark longer than a minute",
}


def commands(path: Path) -> list[str]:
    out, fence, buf = [], False, ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fence, buf = not fence, ""
            continue
        if not fence:
            continue
        text = f"{buf} {line.strip()}" if buf else line.strip()
        if text.endswith("\\"):
            buf = text[:-1].strip()
            continue
        buf = ""
        if PREFIX.match(text):
            out.append(re.sub(r"\s+#.*$", "", text.removeprefix("$ ")).strip())
    return out


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ALL = [(p.relative_to(ROOT).as_posix(), c) for p in DOCS for c in commands(p)]


def test_docs_have_commands():
    assert len(ALL) > 40


@pytest.mark.parametrize("where, command", ALL)
def test_command__is_run_by_a_test_or_says_why_not(where, command):
    for pattern, test_file, evidence in RUN_BY:
        if re.search(pattern, command):
            # whitespace-insensitive: the formatter may spread an argv over lines
            text = "".join((ROOT / test_file).read_text().split())
            assert "".join(evidence.split()) in text, f"{test_file} no longer contains {evidence!r} (it ran: {command})"
            return
    for pattern in NOT_RUN:
        if re.search(pattern, command):
            return
    pytest.fail(f"{where}: {command!r} is run by no test: add a test and a RUN_BY row")


def _args(command: str) -> list[str]:
    text = re.sub(r"\[[^\]]*\]", "", command)  # optional parts
    text = text.replace("<did>", "did:ethr:0x7a69:0x" + "11" * 20).replace("…", "")
    text = re.sub(r"<[^>]+>", "x", text)
    return shlex.split(text)[1:]


@pytest.mark.parametrize("where, command", [(w, c) for w, c in ALL if re.match(r"^(\.venv/bin/)?codexfield ", c)])
def test_codexfield_command__parses_with_the_real_cli(where, command):
    args = _args(command)
    cmd: click.Command = main
    ctx = click.Context(main)
    while isinstance(cmd, click.Group) and args and not args[0].startswith("-"):
        sub = cmd.get_command(ctx, args[0])
        assert sub is not None, f"{where}: no command {args[0]!r} in {command!r}"
        cmd, args = sub, args[1:]
    try:
        cmd.make_context(cmd.name, args, resilient_parsing=True)
    except click.UsageError as exc:
        pytest.fail(f"{where}: {command!r}: {exc.format_message()}")
