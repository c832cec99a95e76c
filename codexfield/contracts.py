"""Contract types (ABIs and bytecode) of the deployed system, for every tool: SDK, CLI, node.

    from codexfield import contracts
    meter = contracts.at("UsageMeter", book.address("UsageMeter"))
    usdc = contracts.erc20(book.token("USDC")["address"])

Where they come from, first match wins:
1. `$CODEXFIELD_CONTRACT_TYPES`: a JSON file as below (an integrator's own build).
2. In a source checkout (an editable install next to `ape-config.yaml`): ape's own build output
   `.build/__local__.json`, so a contract changed and recompiled is seen at once.
3. The package data `codexfield/abi/contracts.json`, which `make abi` writes from (2) with
   `tools/gen_contract_types.py`; the wheel carries it, and
   tests/integrators/test_install.py checks it is current and that an installed wheel uses it.

The file is `{"contractTypes": {Name: ethpm ContractType JSON}}`, the shape of an ethpm
manifest, so `ape.managers.project.ProjectManager.from_manifest` reads it too.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
PACKAGE_DATA = PACKAGE_DIR / "abi" / "contracts.json"
BUILD = ROOT / ".build" / "__local__.json"
ENV = "CODEXFIELD_CONTRACT_TYPES"

# Contracts of the system, the test token deploy.py uses on local chains, and a plain ERC-20
# (built by the generator from Vyper's own IERC20 + IERC20Detailed interfaces).
SYSTEM = [
    "IdentityRegistry",
    "CapsuleRegistry",
    "LicenseManager",
    "RoyaltyRouter",
    "UsageMeter",
    "AccessStaking",
    "Reputation",
]
EXTRA = ["MockERC20", "GovernanceTimelock"]
ERC20 = "ERC20"


class ContractTypesError(RuntimeError):
    """No contract types could be found, or they do not name what was asked for."""


def in_checkout() -> bool:
    """Whether this package runs from the CodexField source tree (not an installed wheel)."""
    return (ROOT / "ape-config.yaml").is_file() and (ROOT / "contracts").is_dir()


def source() -> Path:
    """The file the contract types are read from (see the module docstring)."""
    if os.environ.get(ENV):
        path = Path(os.environ[ENV]).expanduser()
        if not path.is_file():
            raise ContractTypesError(f"{ENV}={path} does not exist; point it at a contract types JSON file")
        return path
    if in_checkout():
        if not BUILD.is_file():
            raise ContractTypesError(f"no compiled contracts at {BUILD}; run 'ape compile' (or 'make setup') in {ROOT}")
        return BUILD
    if not PACKAGE_DATA.is_file():
        raise ContractTypesError(
            f"this codexfield install has no {PACKAGE_DATA.name}; reinstall the wheel "
            f"(built with 'make wheel') or set {ENV}"
        )
    return PACKAGE_DATA


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict[str, dict[str, Any]]:
    data = json.loads(Path(path).read_text())
    return dict(data.get("contractTypes", {}))


def contract_types() -> dict[str, dict[str, Any]]:
    """Name -> ContractType JSON of every known contract."""
    path = source()
    types = _load(str(path), path.stat().st_mtime)
    if ERC20 not in types and path == BUILD:
        types = {**types, ERC20: {"contractName": ERC20, "abi": erc20_abi()}}
    return types


def abi(name: str) -> list[dict[str, Any]]:
    """The ABI (JSON list) of contract `name`."""
    try:
        return contract_types()[name]["abi"]
    except KeyError:
        raise ContractTypesError(f"no contract type {name!r} in {source()}") from None


def contract_type(name: str):
    """The ethpm `ContractType` of `name` (what ape instances are built from)."""
    from ethpm_types import ContractType

    try:
        data = contract_types()[name]
    except KeyError:
        raise ContractTypesError(f"no contract type {name!r} in {source()}") from None
    return ContractType.model_validate(data)


def at(name: str, address: str):
    """An ape contract instance of `name` at `address` (needs a connected ape provider).

    Built directly, not through `chain.contracts.instance_at`, and recorded in ape's contract
    cache on non-local networks (an RPC URL, a testnet), where ape keeps contract types on disk
    by address and decodes receipts (return values, logs) with them: a type cached for the same
    address on an earlier chain (anvil restarted, a redeploy) would win. On the local network
    the cache is ape's own in-memory one (kept as is: test snapshots reuse addresses)."""
    from ape import chain
    from ape.contracts import ContractInstance
    from eth_utils import to_checksum_address

    checksummed, ct = to_checksum_address(str(address)), contract_type(name)
    if not chain.provider.network.is_local:
        chain.contracts[checksummed] = ct
    return ContractInstance(checksummed, ct)


def erc20(address: str):
    """An ape instance of any ERC-20 at `address` (standard ABI plus name/symbol/decimals)."""
    return at(ERC20, address)


@lru_cache(maxsize=1)
def erc20_abi() -> list[dict[str, Any]]:
    """The ERC-20 ABI from Vyper's built-in interfaces (IERC20 and IERC20Detailed), deduplicated."""
    import subprocess
    import sys

    import vyper

    folder = Path(vyper.__file__).parent / "builtins" / "interfaces"
    seen: dict[str, dict[str, Any]] = {}
    for vyi in ("IERC20.vyi", "IERC20Detailed.vyi"):
        out = subprocess.run(
            [sys.executable, "-m", "vyper", "-f", "abi", str(folder / vyi)], check=True, capture_output=True, text=True
        )
        for item in json.loads(out.stdout):
            seen.setdefault(f"{item['type']}:{item.get('name')}", item)
    return list(seen.values())
