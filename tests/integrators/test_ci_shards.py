"""`make test` runs the suite as shards side by side (tools/test_shards.sh): together they must
cover every test folder exactly once, or a new folder would silently never run in CI."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _shards() -> list[list[str]]:
    text = (ROOT / "Makefile").read_text()
    (line,) = re.findall(r"^TEST_SHARDS := (.+)$", text, flags=re.M)
    return [shard.split(",") for shard in line.split()]


def test_shards__cover_every_test_folder_once():
    listed = [path for shard in _shards() for path in shard]
    folders = sorted(str(p.parent.relative_to(ROOT)) for p in (ROOT / "tests").glob("*/test_*.py"))
    assert len(listed) == len(set(listed)), listed
    assert set(listed) == set(folders), (sorted(set(folders) - set(listed)), sorted(set(listed) - set(folders)))
    assert not list((ROOT / "tests").glob("test_*.py")), "a test module directly in tests/ belongs to no shard"
    assert len(_shards()) >= 2


def test_shard_runner__fails_when_a_shard_fails(tmp_path):
    """The runner's status is the worst shard's: a failing shard is not hidden by a passing one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ape"  # stands in for `ape test <paths>`: fails for the path named "bad"
    fake.write_text('#!/bin/sh\nshift\ncase "$1" in bad) echo "1 failed"; exit 1;; *) echo "1 passed";; esac\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    ok = subprocess.run(
        [str(ROOT / "tools" / "test_shards.sh"), "good", "fine,also"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "[shard-1] 1 passed" in ok.stdout and "[shard-2] fine also: exit 0" in ok.stdout
    bad = subprocess.run(
        [str(ROOT / "tools" / "test_shards.sh"), "good", "bad"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "[shard-2] bad: exit 1" in bad.stdout, bad.stdout + bad.stderr
