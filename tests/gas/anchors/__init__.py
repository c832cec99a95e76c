"""Anchors: other protocols' contracts, compiled with npm solcjs and measured on the test chain.

See README.md beside this file for how to add one. `deploy_anchor` compiles an anchor's
Solidity sources (never under contracts/, which is packaged) and deploys one of its contracts;
the gas tests then record its rows with `gasrows.record_anchor`, and `codexfield.gas_table`
prints each anchor figure beside the CodexField rows that target it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

# Extra roots holding anchor sources (`<root>/<name>/...`) and extra import directories, each an
# os.pathsep-separated list; the vendored tree `tests/gas/anchors/<name>/` is looked up first.
SOURCES_ENV = "CODEXFIELD_ANCHOR_SOURCES"
INCLUDE_ENV = "CODEXFIELD_ANCHOR_INCLUDE"


class AnchorUnavailable(Exception):
    """The anchor's sources (or an import of them) are not on this machine."""


def _env_paths(name: str) -> list[Path]:
    return [Path(p) for p in os.environ.get(name, "").split(os.pathsep) if p]


def source_dir(name: str) -> Path:
    """Where the anchor `name` lives: tests/gas/anchors/<name>/, else <root>/<name>/ of SOURCES_ENV."""
    for root in [HERE, *_env_paths(SOURCES_ENV)]:
        d = root / name
        if d.is_dir() and any(d.rglob("*.sol")):
            return d
    raise AnchorUnavailable(
        f"anchor {name!r}: no Solidity sources in tests/gas/anchors/{name}/ (vendor them there with their "
        f"licence header) nor in ${SOURCES_ENV}"
    )


@cache
def compile_anchor(name: str, optimize_runs: int = 200) -> dict[str, dict]:
    """Compile every .sol file of anchor `name` with the `solc` on PATH (the npm solcjs shim).

    Imports resolve against the anchor's folder, the repository's node_modules and INCLUDE_ENV.
    Returns {contract name: {"abi": [...], "bytecode": "0x..."}}.
    """
    d = source_dir(name)
    solc = shutil.which("solc")
    if not solc:
        raise AnchorUnavailable("no `solc` on PATH (make setup links tools/solc-shim.sh over npm solcjs)")
    sources = {str(p.relative_to(d)): {"content": p.read_text()} for p in sorted(d.rglob("*.sol"))}
    request = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "evmVersion": "cancun",
            "optimizer": {"enabled": True, "runs": optimize_runs},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    includes = [ROOT / "node_modules", *_env_paths(INCLUDE_ENV)]
    cmd = [solc, "--standard-json", "--base-path", str(d)]
    for inc in includes:
        if inc.is_dir():
            cmd += ["--include-path", str(inc)]
    # The request goes through a file, not a pipe: inside a full `ape test` run node may find its
    # stdin pipe non-blocking and fail the read with EAGAIN.
    with tempfile.TemporaryFile("w+") as f:
        json.dump(request, f)
        f.seek(0)
        proc = subprocess.run(cmd, stdin=f, capture_output=True, text=True, cwd=d, check=False)
    out = json.loads(proc.stdout)
    errors = [e["formattedMessage"] for e in out.get("errors", []) if e["severity"] == "error"]
    if errors:
        if any("not found" in e.lower() or "file import callback" in e.lower() for e in errors):
            raise AnchorUnavailable(f"anchor {name!r}: an import is missing:\n" + "\n".join(errors))
        raise AssertionError("\n".join(errors))
    return {
        cname: {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}
        for file_contracts in out["contracts"].values()
        for cname, c in file_contracts.items()
    }


def container(name: str, contract: str):
    """An ape ContractContainer for `contract` of anchor `name` (deploy with `.deploy(..., sender=)`)."""
    from ape.contracts import ContractContainer
    from ethpm_types import ContractType

    c = compile_anchor(name)[contract]
    return ContractContainer(
        ContractType.model_validate(
            {"contractName": contract, "abi": c["abi"], "deploymentBytecode": {"bytecode": c["bytecode"]}}
        )
    )


def at(name: str, contract: str, address: str):
    """The deployed `contract` of anchor `name` at `address` (e.g. a clone made by a factory)."""
    from ape import Contract

    return Contract(address, contract_type=container(name, contract).contract_type)
