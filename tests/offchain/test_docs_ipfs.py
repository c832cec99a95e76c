"""docs/manifest.md, "Capsules on IPFS": every console command is run and its output compared;
the Python block is executed; the kubo commands (kubo is not installable here) are checked
against the RPC calls `IpfsHttpStore` makes and against the npm importer configured like kubo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs/manifest.md").read_text()
SECTION = DOC[DOC.index("### Capsules on IPFS") :]


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", SECTION, re.S)


def console_steps() -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in blocks("console")[0].splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


@pytest.fixture(scope="module")
def worked(tmp_path_factory):
    """Run the console block in a fresh directory, as a reader would."""
    cwd = tmp_path_factory.mktemp("docs-ipfs")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(REPO / "node_modules/.bin"), str(Path(sys.executable).parent), env["PATH"]])
    env["PYTHONPATH"] = str(REPO)
    env["CODEXFIELD_STORE"] = str(cwd / "unused-store")
    for command, expected in console_steps():
        out = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"
        assert out.stdout.splitlines() == expected, command
    return cwd


def test_docs__console_block__every_command_prints_what_the_doc_shows(worked):
    assert (worked / "iris.car").is_file()


def test_docs__python_block__publishes_fetches_and_verifies(worked, monkeypatch):
    monkeypatch.chdir(worked)
    exec(compile(blocks("python")[-1], "docs/manifest.md", "exec"), {})
    from codexfield.car import CarReader

    with CarReader(worked / "fetched.car") as fetched, CarReader(worked / "iris.car") as packed:
        assert fetched.roots == packed.roots
        assert sorted(map(str, fetched.order)) == sorted(map(str, packed.order))


def test_docs__ipfs_add_command__root_equals_kubo_configured_importer(worked):
    sh = blocks("sh")[0]
    assert "ipfs add -r --hidden --cid-version=1 iris/" in sh
    printed = next(line.split()[-1] for _, out in console_steps() for line in out if line.startswith("ipfs root"))
    ref = subprocess.run(
        ["node", str(REPO / "tests/offchain/js/unixfs_ref.mjs"), "import", str(worked / "iris")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ref.returncode == 0, ref.stderr
    assert json.loads(ref.stdout)["root"] == printed


def test_docs__dag_import_command__is_the_rpc_call_put_car_makes(worked):
    from test_store import FakeKubo, serve  # tests/offchain is on sys.path (rootdir-relative test modules)

    from codexfield.store import IpfsHttpStore

    sh = blocks("sh")[0]
    match = re.search(r"ipfs dag import --pin-roots=true iris.car\s+# RPC: POST (\S+)\?(\S+)", sh)
    assert match, sh
    handler = type("Kubo", (FakeKubo,), {"blocks": {}, "cars": {}, "calls": [], "tamper": False})
    server, url = serve(handler)
    try:
        IpfsHttpStore(url).put_car(worked / "iris.car")
    finally:
        server.shutdown()
        server.server_close()
    path, query = handler.calls[-1]
    assert path == match.group(1)
    key, value = match.group(2).split("=")
    assert query[key] == [value]
