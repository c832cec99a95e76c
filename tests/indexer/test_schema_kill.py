"""A process SIGKILLed during the first schema creation leaves a catalog every command opens
(the migration is one transaction on SQLite too). The kill point — the n-th CREATE statement
of the migration — is chosen by the test; the victim is a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from codexfield.cli.index import index_group
from codexfield.indexer.db import current_revision, make_engine, migrate

ROOT = Path(__file__).resolve().parents[2]

VICTIM = textwrap.dedent("""
    import os, signal, sys
    from sqlalchemy import Engine, event
    from codexfield.indexer.db import make_engine, migrate
    kill_at, seen = int(sys.argv[2]), [0]

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("CREATE"):
            seen[0] += 1
            if seen[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    migrate(make_engine(sys.argv[1]))
    print("finished without reaching the kill point")
""")


@pytest.mark.parametrize("kill_at", [1, 2, 17, 40, 53])  # 53 CREATE statements in all (the last: FTS triggers)
def test_sigkill_during_first_migration__catalog_opens_and_migrates(tmp_path, kill_at):
    db = tmp_path / "catalog.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", VICTIM, str(db), str(kill_at)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    engine = make_engine(db)
    assert current_revision(engine) is None  # nothing of the interrupted migration survived
    migrate(engine)
    assert current_revision(engine) is not None
    engine.dispose()
    r = CliRunner().invoke(index_group, ["status", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "no chain indexed yet" in r.output
