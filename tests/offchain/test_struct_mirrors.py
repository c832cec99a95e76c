"""The Python mirrors of the Vyper structs equal the compiled ABI, field for field.

Each mirror (`Terms`, `Voucher`, `Params`) is typed by hand once, in the package; this test
reads the ABI that `tools/gen_contract_types.py` wrote (codexfield/abi/contracts.json, from
`ape compile`) and checks each mirror's field names, order and types against the struct's
components. A struct changed in a contract without its mirror fails here, naming the field.
"""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from codexfield import contracts
from codexfield.ldl.terms import ABI_FIELDS as TERMS_ABI_FIELDS
from codexfield.ldl.terms import ABI_TYPE as TERMS_ABI_TYPE
from codexfield.ldl.terms import Terms
from codexfield.poa import Params
from codexfield.sdk.metering import VOUCHER_TYPE_STRING, VOUCHER_TYPES, Voucher

# A dataclass annotation -> the ABI types it may stand for (Python has one int).
PY_ABI = {"int": ("uint", "int"), "bool": ("bool",), "str": ("address", "string"), "bytes": ("bytes",)}


def _abi() -> dict[str, list[dict]]:
    if not contracts.PACKAGE_DATA.is_file():
        pytest.fail(f"{contracts.PACKAGE_DATA} is missing: run 'make abi' (ape compile + tools/gen_contract_types.py)")
    types = json.loads(contracts.PACKAGE_DATA.read_text())["contractTypes"]
    return {name: t["abi"] for name, t in types.items()}


def _components(contract: str, function: str, arg: str | None = None) -> list[tuple[str, str]]:
    """(name, type) of the struct taken by `function`'s input `arg` (or returned, when `arg` is None)."""
    for item in _abi()[contract]:
        if item.get("type") != "function" and not (item.get("type") == "constructor" and function == "__init__"):
            continue
        if item.get("name", "__init__") != function:
            continue
        ios = item["outputs"] if arg is None else [i for i in item["inputs"] if i["name"] == arg]
        assert ios, f"{contract}.{function} has no {'output' if arg is None else 'input ' + arg}"
        assert ios[0]["type"].startswith("tuple"), f"{contract}.{function} {arg or 'output'} is no struct"
        return [(c["name"], c["type"]) for c in ios[0]["components"]]
    raise AssertionError(f"{contract} has no function {function} in {contracts.PACKAGE_DATA}")


def _annotation(cls, name: str) -> str:
    return str(cls.__annotations__[name]).split("|")[0].strip()


def _assert_dataclass_matches(cls, abi: list[tuple[str, str]]) -> None:
    names = [f.name for f in fields(cls)]
    assert names == [n for n, _ in abi], f"{cls.__name__} fields differ from the ABI struct: {names} != {abi}"
    for name, typ in abi:
        allowed = PY_ABI[_annotation(cls, name)]
        assert typ.startswith(allowed), f"{cls.__name__}.{name} is {_annotation(cls, name)}, the ABI says {typ}"


@pytest.mark.parametrize(
    "contract,function,arg",
    [
        ("LicenseManager", "create_terms", "terms"),
        ("LicenseManager", "terms_id_of", "terms"),
        ("LicenseManager", "terms", None),
    ],
)
def test_terms_mirror__equals_the_license_manager_terms_struct(contract, function, arg):
    abi = _components(contract, function, arg)
    assert list(TERMS_ABI_FIELDS) == abi
    assert TERMS_ABI_TYPE == "(" + ",".join(t for _, t in abi) + ")"
    _assert_dataclass_matches(Terms, abi)


@pytest.mark.parametrize(
    "contract,function,arg",
    [
        ("UsageMeter", "ingest", "vouchers"),
        ("UsageMeter", "ingest_attested", "vouchers"),
        ("UsageMeter", "voucher_digest", "v"),
    ],
)
def test_voucher_mirror__equals_the_usage_meter_voucher_struct_and_its_eip712_type(contract, function, arg):
    abi = _components(contract, function, arg)
    assert [(f["name"], f["type"]) for f in VOUCHER_TYPES["Voucher"]] == abi
    assert VOUCHER_TYPE_STRING == "Voucher(" + ",".join(f"{t} {n}" for n, t in abi) + ")"
    _assert_dataclass_matches(Voucher, abi)


@pytest.mark.parametrize("function,arg", [("__init__", "params_"), ("params", None)])
def test_params_mirror__equals_the_access_staking_params_struct(function, arg):
    abi = _components("AccessStaking", function, arg)
    _assert_dataclass_matches(Params, abi)
    assert len(Params().as_tuple()) == len(abi)
