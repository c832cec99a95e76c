"""`codexfield index migrate|run|status` against a real chain and a SQLite file."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from codexfield.cli.index import index_group


def _head() -> str:
    """The newest migration (whichever helper's migration is last in the chain)."""
    from alembic.script import ScriptDirectory

    from codexfield.indexer.db import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_cli__migrate_run_once_status(tmp_path, system, chain, creator):
    system.registry.mint(2, os.urandom(32), [], [], "", sender=creator)
    db = str(tmp_path / "cli.db")
    book = tmp_path / "book.json"
    book.write_text(json.dumps({"chain_id": chain.chain_id, "block": system.start, "contracts": system.addresses}))
    runner = CliRunner()
    r = runner.invoke(index_group, ["migrate", "--db", db])
    assert r.exit_code == 0 and f"revision {_head()}" in r.output
    rpc = chain.provider.uri
    r = runner.invoke(
        index_group,
        [
            "run",
            "--db",
            db,
            "--rpc",
            rpc,
            "--book",
            str(book),
            "--confirmations",
            "0",
            "--once",
            "--store",
            str(tmp_path / "store"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert f"chain {chain.chain_id}: block {chain.blocks.head.number}" in r.output
    r = runner.invoke(index_group, ["status", "--db", db, "--json"])
    s = json.loads(r.output)
    assert s["chains"][0]["indexed_block"] == chain.blocks.head.number and s["capsules"] >= 1
    assert s["manifests"].get("retry", 0) >= 1  # the manifest is not in the (empty) store: queued
    r = runner.invoke(index_group, ["status", "--db", db])
    assert "lag 0" in r.output and "not_found" in r.output


def test_cli__run_without_address_book__says_what_to_do(tmp_path):
    r = CliRunner().invoke(
        index_group,
        [
            "run",
            "--db",
            str(tmp_path / "x.db"),
            "--rpc",
            "http://127.0.0.1:9",
            "--network",
            "ethereum:nowhere",
            "--once",
        ],
    )
    assert r.exit_code != 0 and "deploy" in r.output
