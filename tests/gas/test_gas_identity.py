"""Gas of the IdentityRegistry's hot operations (DESIGN §3.1 sets no target: rows carry null).

Each operation is measured on a fresh identity (the first change writes `changed` from zero),
which is what a creator pays once; later changes cost ~17k less (`changed` non-zero).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from codexfield.did import SIG_AUTH, attribute_name, pack_args, signed_digest

GAS_FILE = Path(__file__).resolve().parents[2] / ".gas" / "identity.json"
PUB_KEY = bytes.fromhex("02b97c30de767f084ce3080168ee293053ba33b235d7116a3263d29f1450936b71")


@pytest.fixture(scope="module")
def ids(project, admin):
    return admin.deploy(project.IdentityRegistry)


@pytest.fixture(scope="module")
def rows():
    data: dict[str, dict] = {}
    yield data
    GAS_FILE.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(GAS_FILE.read_text()) if GAS_FILE.exists() else {}
    old.update(data)
    GAS_FILE.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


def _record(rows, operation, tx):
    rows[operation] = {"gas": tx.gas_used, "target": None}
    return tx.gas_used


def test_gas__change_owner(ids, rows, creator, licensor):
    gas = _record(rows, "identity changeOwner (first change)", ids.changeOwner(creator, licensor, sender=creator))
    assert 0 < gas < 72_000  # floor: 21k + two fresh slots (owners, changed) 44.2k


def test_gas__add_delegate(ids, rows, creator, licensor):
    tx = ids.addDelegate(creator, SIG_AUTH, licensor, 86_400, sender=creator)
    assert (
        0 < _record(rows, "identity addDelegate sigAuth (first change)", tx) < 76_000
    )  # floor: 21k + two fresh slots (delegates, changed) 44.2k


def test_gas__set_attribute(ids, rows, creator):
    tx = ids.setAttribute(creator, attribute_name("did/pub/Secp256k1/veriKey/hex"), PUB_KEY, 86_400, sender=creator)
    assert (
        0 < _record(rows, "identity setAttribute 33-byte key (first change)", tx) < 56_000
    )  # floor: 21k + one fresh slot (changed) 22.1k + the event


def test_gas__set_attribute__later_change(ids, rows, licensor):
    name = attribute_name("did/svc/CodexNode")
    ids.setAttribute(licensor, name, b"https://node.example", 86_400, sender=licensor)
    tx = ids.setAttribute(licensor, name, b"https://node2.example", 86_400, sender=licensor)
    assert 0 < _record(rows, "identity setAttribute (later change)", tx) < 40_000


def test_gas__add_delegate_signed(ids, rows, stranger, licensor):
    key = Account.create()
    h = signed_digest(ids.address, 0, key.address, "addDelegate", pack_args(SIG_AUTH, licensor.address, 86_400))
    sig = Account.unsafe_sign_hash(h, key.key)
    tx = ids.addDelegateSigned(
        key.address,
        sig.v,
        sig.r.to_bytes(32, "big"),
        sig.s.to_bytes(32, "big"),
        SIG_AUTH,
        licensor,
        86_400,
        sender=stranger,
    )
    assert (
        0 < _record(rows, "identity addDelegateSigned (relayed, first change)", tx) < 106_000
    )  # + calldata, ecrecover 3k, fresh nonce slot 22.1k
