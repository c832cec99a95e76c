"""Handlers against the compiled ABIs: every handled event of a compiled contract exists with
every argument its handler requires (LicenseManager, RoyaltyRouter and AccessStaking join this
check automatically once they are compiled in the project); real-ABI logs decode and apply."""

from __future__ import annotations

import inspect
import re

import pytest
from eth_abi import encode
from sqlalchemy import select

from codexfield.indexer import models as m
from codexfield.indexer.abi import EventDecoder, _type, load_abis, topic0
from codexfield.indexer.handlers import HANDLERS

from synth import ADDR, BOB, NODE, Feed, capsule_id

ABIS = load_abis()


def _required(fn) -> set[str]:
    return set(re.findall(r'a\["(\w+)"\]', inspect.getsource(fn)))


@pytest.mark.parametrize("contract, event", sorted(HANDLERS))
def test_handler__required_args_exist_in_compiled_abi(contract, event):
    if contract not in ABIS:
        pytest.skip(f"{contract} is not compiled in this project yet")
    events = {e["name"]: e for e in ABIS[contract] if e.get("type") == "event"}
    if event not in events:
        pytest.skip(f"{contract} does not emit {event} (tolerated: handler stays idle)") if event in (
            "DIDDelegateChanged",
            "DIDAttributeChanged",
        ) else pytest.fail(f"{contract} has no event {event}")
    names = {i["name"] for i in events[event]["inputs"]}
    missing = _required(HANDLERS[(contract, event)]) - names
    assert not missing, f"{contract}.{event} lacks {missing}"


def _log(contract: str, event_name: str, values: dict, block: int = 1, index: int = 0) -> dict:
    ev = next(e for e in ABIS[contract] if e.get("type") == "event" and e["name"] == event_name)
    topics = [topic0(ev)] + ["0x" + encode([_type(i)], [values[i["name"]]]).hex() for i in ev["inputs"] if i["indexed"]]
    plain = [i for i in ev["inputs"] if not i["indexed"]]
    data = encode([_type(i) for i in plain], [values[i["name"]] for i in plain])
    return {
        "address": ADDR[contract],
        "topics": topics,
        "data": "0x" + data.hex(),
        "blockNumber": block,
        "blockHash": "0x" + "ab" * 32,
        "logIndex": index,
        "transactionHash": "0x" + "cd" * 32,
    }


def test_usage_recorded__real_abi_log__decodes_and_applies(engine):
    dec = EventDecoder(ADDR, abis=ABIS)
    values = {
        "credential_id": 9,
        "capsule_id": 1,
        "node": NODE,
        "payer": BOB,
        "issued_at": 1_700_000_000,
        "delta_mu": 7,
        "delta_calls": 3,
        "delta_failures": 1,
        "delta_latency_ms": 300,
        "license_amount": 21,
        "node_amount": 14,
        "protocol_fee": 1,
        "paid": True,
    }
    e = dec.decode(_log("UsageMeter", "UsageRecorded", values))
    assert e.contract == "UsageMeter" and e.name == "UsageRecorded" and e.args == values
    minted = dec.decode(
        _log(
            "CapsuleRegistry",
            "CapsuleMinted",
            {
                "capsule_id": 1,
                "creator": BOB,
                "kind": 2,
                "content_hash": b"\x01" * 32,
                "previous_id": 0,
                "version": 1,
                "parents": [],
                "uri": "",
            },
        )
    )
    f = Feed(engine)
    f.block_of([(minted.contract, minted.name, minted.args), (e.contract, e.name, e.args)])
    with engine.connect() as conn:
        u = (
            conn.execute(select(m.CapsuleUsage.__table__).where(m.CapsuleUsage.capsule_id == capsule_id(1)))
            .mappings()
            .one()
        )
    assert (u["mu"], u["calls"], u["failures"], u["latency_ms"], u["license_amount"]) == (7, 3, 1, 300, 21)


def test_decoder__unknown_address_or_topic__ignored():
    dec = EventDecoder(ADDR, abis=ABIS)
    log = _log("Reputation", "AttestationRevoked", {"attestation_id": 3})
    assert dec.decode(log).args == {"attestation_id": 3}
    assert dec.decode({**log, "address": "0x" + "99" * 20}) is None
    assert dec.decode({**log, "topics": ["0x" + "00" * 32]}) is None
