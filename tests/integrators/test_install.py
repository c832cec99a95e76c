"""The package as an integrator gets it: a wheel installed into a fresh venv outside the
checkout, running the quickstart and three CLI verbs against the deployed test chain.

The wheel is built with `pip wheel --no-deps` (the Makefile's `wheel` step) after `make abi`
regenerated the contract types it carries. The venv has no codexfield of the checkout: its
dependencies are those of /work/main's .venv, reached through a `.pth` path entry (a fresh
install from PyPI takes minutes), so `import codexfield` must resolve into the new venv and read
its contract types from the package data. What pip would install for the core is checked from
the wheel's METADATA: no indexer, node, bot, plot or test dependency without an extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from codexfield import contracts

ROOT = Path(__file__).resolve().parents[2]
EXTRA_ONLY = {
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "uvicorn",
    "aiohttp",
    "numpy",
    "silverback",
    "matplotlib",
    "selenium",
    "hypothesis",
    "pytest",
    "ape-vyper",
    "ape-solidity",
    "vyper",
    "snekmate",
    "httpx",
}


def test_contract_types__package_data_is_current():
    subprocess.run(["make", "-s", "abi"], cwd=ROOT, check=True, capture_output=True)
    check = subprocess.run(
        [sys.executable, "tools/gen_contract_types.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    data = json.loads(contracts.PACKAGE_DATA.read_text())["contractTypes"]
    assert set(contracts.SYSTEM + contracts.EXTRA + [contracts.ERC20]) == set(data)
    erc20 = {item["name"] for item in data["ERC20"]["abi"]}
    assert {"transfer", "approve", "allowance", "balanceOf", "decimals", "symbol", "Transfer"} <= erc20
    assert "mint" not in erc20  # the node gateway's ERC-20 is the standard one, not the test token


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    subprocess.run(["make", "-s", "abi"], cwd=ROOT, check=True, capture_output=True)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (path,) = out.glob("codexfield-*.whl")
    return path


def test_wheel__core_requires_no_service_or_dev_dependency(wheel):
    meta = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("dist-info/METADATA")))
        .decode()
    )
    core = [
        line.split(":", 1)[1].strip()
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    names = {r.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower() for r in core}
    assert "eth-ape" in names and not names & EXTRA_ONLY, names
    assert "codexfield/abi/contracts.json" in zipfile.ZipFile(wheel).namelist()


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    where = tmp_path_factory.mktemp("integrator")
    env_dir = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    deps = Path(sysconfig.get_path("purelib"))  # this interpreter's site-packages: the dependencies
    (site / "zz_dependencies.pth").write_text(f"{deps}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return env_dir


@pytest.fixture(scope="module")
def deployed(system, tmp_path_factory, networks):
    book = system.book
    path = tmp_path_factory.mktemp("book") / "book.json"
    path.write_text(json.dumps(book.to_json()))
    return path, networks.provider.uri


def _run(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"HOME": os.environ["HOME"], "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "CODEXFIELD_STORE": str(cwd / "store")}
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_installed_wheel__imports_from_the_venv_with_package_data(venv, tmp_path):
    code = "import codexfield, codexfield.contracts as c; print(codexfield.__file__); print(c.source())"
    r = _run(venv, str(venv / "bin" / "python"), "-c", code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    module, source = r.stdout.split()
    assert module.startswith(str(venv)) and source.endswith("codexfield/abi/contracts.json"), r.stdout


def test_installed_wheel__quickstart_and_three_verbs(venv, deployed, tmp_path):
    book, uri = deployed
    py = str(venv / "bin" / "python")
    r = _run(venv, py, str(ROOT / "examples" / "quickstart.py"), "--network", uri, "--book", str(book), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = eval([line for line in r.stdout.splitlines() if line.startswith("{")][-1])  # what run() returns
    assert out["applied"] == 1 and out["claimed"] > 0
    cli = [str(venv / "bin" / "codexfield")]
    common = ["--network", uri, "--book", str(book), "--json"]
    data = tmp_path / "model"
    data.mkdir()
    (data / "weights.bin").write_bytes(b"\x01" * 1024)
    r = _run(
        venv,
        *cli,
        "capsule",
        "mint",
        str(data),
        "--kind",
        "model",
        *common,
        "--account",
        "TEST:1",
        "--yes",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    minted = json.loads(r.stdout)
    r = _run(venv, *cli, "capsule", "show", str(minted["capsule_id"]), *common, cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["kind"] == "model", r.stderr
    r = _run(venv, *cli, "royalties", "status", str(out["dataset"]), *common, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["claimable"] == "0 USDC"  # the quickstart claimed it all
    r = _run(venv, *cli, "capsule", "show", "999", *common, cwd=tmp_path)
    assert (
        r.returncode == 1
        and r.stderr.strip() == f"Error: no capsule 999 on {uri}; list capsules with 'codexfield index' or the catalog"
    )
