"""`codexfield license compile` (offline) through click's CliRunner.

`license show` and `license publish` need a deployed LicenseManager; they are exercised by the
integration tests once the contract lands.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from codexfield.cli import main
from codexfield.cli.license import license_group
from codexfield.ldl import Terms, compile_ldl

SOURCE = """license "CLI demo" for capsule 42
price 0.002 USDC per MU, upfront 10 USDC
meter llm.tokens.1k
duration 30 days; quota 1_000_000 MU; rate 500 MU per hour
allow research, derivatives; deny commercial
derivatives pay 2.5%
revocable by arbiter
text file "LICENSE.md"
"""


@pytest.fixture
def licence_file(tmp_path):
    (tmp_path / "LICENSE.md").write_text("the full licence text\n")
    path = tmp_path / "terms.ldl"
    path.write_text(SOURCE)
    return path


def test_compile__prints_json_and_abi_tuple(licence_file):
    result = CliRunner().invoke(license_group, ["compile", str(licence_file)])
    assert result.exit_code == 0, result.output
    body, abi_line = result.output.rsplit("\nabi ", 1)
    doc = json.loads(body)
    expected = compile_ldl(SOURCE, base_dir=licence_file.parent).terms
    assert Terms.from_json(doc["terms"]) == expected
    assert doc["name"] == "CLI demo" and doc["meter_name"] == "llm.tokens.1k"
    assert doc["token"]["symbol"] == "USDC" and doc["scopes"] == ["research", "derivatives"]
    assert doc["denied"] == ["commercial"]
    assert doc["terms"]["text_hash"] == "0x" + hashlib.sha256(b"the full licence text\n").hexdigest()
    assert abi_line.strip() == expected.abi_text()
    assert abi_line.startswith("(42,0x5FbDB2315678afecb367f032d93F642f64180aa3,2000,10000000,0x")


def test_compile__json_only_and_abi_only(licence_file):
    runner = CliRunner()
    out = runner.invoke(license_group, ["compile", str(licence_file), "--json"])
    assert out.exit_code == 0
    assert json.loads(out.output)["terms"]["derivative_share_bps"] == 250
    out = runner.invoke(license_group, ["compile", str(licence_file), "--abi"])
    assert out.exit_code == 0
    assert out.output.strip().endswith(
        ",250,2,0,0,false," + "0x" + hashlib.sha256(b"the full licence text\n").hexdigest() + ")"
    )
    out = runner.invoke(license_group, ["compile", str(licence_file), "--abi", "--json"])
    assert out.exit_code == 2 and "exclusive" in out.output


def test_compile__capsule_option_overrides_the_clause(licence_file):
    out = CliRunner().invoke(license_group, ["compile", str(licence_file), "--capsule", "7", "--abi"])
    assert out.exit_code == 0 and out.output.startswith("(7,")


def test_compile__chain_option_selects_the_token_list(licence_file):
    out = CliRunner().invoke(license_group, ["compile", str(licence_file), "--chain", "84532", "--json"])
    assert out.exit_code == 0
    assert json.loads(out.output)["terms"]["payment_token"] == "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def test_compile__stdin(tmp_path):
    out = CliRunner().invoke(license_group, ["compile", "-", "--abi"], input="license for capsule 3; allow research\n")
    assert out.exit_code == 0 and out.output.startswith("(3,0x0000000000000000000000000000000000000000,0,0,")


def test_compile__licence_error_prints_position_and_caret_and_exits_2(tmp_path):
    path = tmp_path / "bad.ldl"
    path.write_text("license for capsule 1\nallow comercial\n")
    out = CliRunner().invoke(license_group, ["compile", str(path)])
    assert out.exit_code == 2
    lines = out.output.splitlines()
    assert lines[0] == f"{path}:2:7: unknown scope 'comercial' — did you mean 'commercial'?" + lines[0].split("?", 1)[1]
    assert lines[1:3] == ["  allow comercial", "        ^"]


def test_compile__non_utf8_file__is_reported(tmp_path):
    path = tmp_path / "bin.ldl"
    path.write_bytes(b"license \xff\xfe")
    out = CliRunner().invoke(license_group, ["compile", str(path)])
    assert out.exit_code != 0 and "not UTF-8" in out.output


def test_compile__reachable_from_the_top_level_cli(licence_file):
    out = CliRunner().invoke(main, ["license", "compile", str(licence_file), "--abi"])
    assert out.exit_code == 0 and out.output.startswith("(42,")


def test_show_and_publish__are_registered_with_their_options():
    runner = CliRunner()
    show = runner.invoke(license_group, ["show", "--help"])
    assert show.exit_code == 0 and "--network" in show.output and "TERMS_ID" in show.output
    publish = runner.invoke(license_group, ["publish", "--help"])
    assert publish.exit_code == 0 and "--account" in publish.output and "--capsule" in publish.output
