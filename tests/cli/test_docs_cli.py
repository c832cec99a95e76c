"""docs/cli.md: its walkthrough blocks run line by line on a fresh deployment, and every
`--json` output has exactly the keys of the shapes table."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from codexfield.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
TERMS = """license "Walkthrough" for capsule 1
price 0.002 USDC per MU, upfront 1 USDC
meter llm.tokens.1k
allow inference, research
revocable by licensor with notice 0 days
"""
READ_ONLY = {"capsule show", "license show", "license credential", "escrow balance", "royalties status", "node status"}


def _blocks() -> list[list[str]]:
    text = DOC.read_text()
    return [
        [line for line in block.splitlines() if line.startswith("codexfield ")]
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
    ]


def _shapes() -> dict[str, set[str]]:
    text = DOC.read_text().split("### `--json` shapes", 1)[1]
    shapes: dict[str, set[str]] = {}
    for row in re.findall(r"^\| (`.+?) \| (.+?) \|$", text, re.M):
        names, keys = row
        verbs = re.findall(r"`([^`]+)`", names)
        group = verbs[0].split()[0]
        for v in verbs:
            full = v if v.split()[0] == group or len(verbs[0].split()) == 1 else f"{group} {v}"
            shapes[full] = {k.strip() for k in keys.split("(")[0].split(",")}
    return shapes


def _verb(argv: list[str]) -> str:
    words = [
        a
        for a in argv[:3]
        if not a.startswith("-") and not a.startswith("./") and not re.match(r"^\d", a) and not a.endswith(".ldl")
    ]
    for n in (3, 2, 1):
        candidate = " ".join(words[:n])
        if candidate in _shapes():
            return candidate
    raise AssertionError(f"no --json shape documented for {argv}")


@pytest.fixture
def workdir(tmp_path, monkeypatch, book_file, network, cf, accounts):
    for name, rows in (("weather", "t,v\n1,2\n"), ("weather-v2", "t,v\n1,2\n2,3\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.csv").write_text(rows)
    (tmp_path / "terms.ldl").write_text(TERMS)
    (tmp_path / "audit.txt").write_text("passed\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODEXFIELD_ADDRESS_BOOK", str(book_file))
    monkeypatch.setenv("CODEXFIELD_NETWORK", network)
    monkeypatch.setenv("CODEXFIELD_STORE", str(tmp_path / "store"))
    cf.test_token("USDC").mint(accounts[3], cf.units("USDC", 100), sender=accounts[3])
    cf.test_token("CDX").mint(accounts[4], cf.units("CDX", 10_000), sender=accounts[4])
    return tmp_path


def _run(line: str, shapes: dict[str, set[str]]) -> dict:
    import json

    argv = shlex.split(line)[1:]
    verb = _verb(argv)
    if verb in READ_ONLY:
        plain = CliRunner(mix_stderr=False).invoke(main, argv)
        assert plain.exit_code == 0, f"{line}: {plain.stderr}"
        assert plain.stdout.strip(), line
    r = CliRunner(mix_stderr=False).invoke(main, argv + ["--json"])
    assert r.exit_code == 0, f"{line}: {r.stderr}"
    data = json.loads(r.stdout)
    assert set(data) == shapes[verb], f"{line}: {sorted(data)} != {sorted(shapes[verb])}"
    return data


def test_walkthrough_runs_and_json_shapes_match(workdir, cf, chain, accounts):
    shapes = _shapes()
    first, after = _blocks()
    for line in first:
        _run(line, shapes)
    consumer, node = accounts[3], accounts[4]
    v = cf.voucher(1, node, mu=500, calls=5, latency_ms=250, node_price_per_mu=1000)
    assert cf.ingest([(v, cf.sign(v, consumer))], sender=node).applied == 1
    ready = int(cf.meter.withdrawals(consumer, cf.token_address("USDC")).ready_at)
    chain.mine(timestamp=ready + 1)
    for line in after:
        _run(line, shapes)
    assert len(first) + len(after) >= 20


def test_every_verb_of_the_table_has_a_shape():
    shapes = _shapes()
    table = DOC.read_text().split("### Verbs", 1)[1].split("###", 1)[0]
    for cell in re.findall(r"^\| `([a-z ]+?)[ `]", table, re.M):
        assert any(s.startswith(cell.strip()) for s in shapes), cell
