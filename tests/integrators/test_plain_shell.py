"""README commands from a plain shell after `make setup`: no PATH edits, no activated venv.

ape-foundry looks `anvil` up on PATH; `codexfield/__init__.py` adds the checkout's
`.tools/bin` (where `make setup` links anvil) when it is missing, so `.venv/bin/ape run
deploy ...`, `.venv/bin/python examples/quickstart.py` and `.venv/bin/codexfield ...` start
their own anvil from a shell whose PATH is only /usr/bin:/bin. (In a worktree whose `.venv`
belongs to another checkout, PYTHONPATH points the interpreter at this one; in the checkout
itself the editable install does that.)
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv" / "bin"

pytestmark = pytest.mark.skipif(
    not (VENV / "ape").exists() or not (ROOT / ".tools" / "bin" / "anvil").exists(), reason="needs make setup"
)


def _plain(*argv: str, tmp: Path, timeout: int = 300, **extra: str) -> subprocess.CompletedProcess:
    env = {"HOME": os.environ["HOME"], "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **extra}
    return subprocess.run(list(argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_plain_shell__anvil_is_not_on_path():
    r = subprocess.run(["sh", "-c", "command -v anvil"], env={"PATH": "/usr/bin:/bin"}, capture_output=True)
    assert r.returncode != 0


def test_plain_shell__quickstart_starts_its_own_anvil(tmp_path):
    r = _plain(str(VENV / "python"), "examples/quickstart.py", tmp=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = eval([line for line in r.stdout.splitlines() if line.startswith("{")][-1])  # what run() returns
    assert out["applied"] == 1 and out["claimed"] > 0


def test_plain_shell__ape_run_deploy_then_codexfield(tmp_path):
    r = _plain(
        str(VENV / "ape"),
        "run",
        "deploy",
        "--network",
        "ethereum:local:foundry",
        "--test-tokens",
        tmp=tmp_path,
        CODEXFIELD_DEPLOYMENTS=str(tmp_path),
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    book = json.loads((tmp_path / "ethereum-local.json").read_text())
    assert {"CapsuleRegistry", "UsageMeter"} <= set(book["contracts"])
    r = _plain(str(VENV / "codexfield"), "--help", tmp=tmp_path)
    assert r.returncode == 0 and "capsule" in r.stdout and "escrow" in r.stdout
