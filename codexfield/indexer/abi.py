"""Event ABIs from the compiled ape project, and log decoding.

The ABIs come from ape's build output (`.build/__local__.json`, written by `ape compile`);
nothing here re-declares an event by hand. `EventDecoder` maps (contract address, topic0) to
the event ABI of the contract the address book names at that address.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from codexfield import contracts

INDEXED_CONTRACTS = (
    "CapsuleRegistry",
    "IdentityRegistry",
    "LicenseManager",
    "UsageMeter",
    "RoyaltyRouter",
    "AccessStaking",
    "Reputation",
)


class AbiError(RuntimeError):
    """The compiled ABIs are missing: run `ape compile`."""


def _type(arg: Mapping[str, Any]) -> str:
    t = arg["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in arg["components"]) + ")" + t[len("tuple") :]
    return t


def event_signature(event: Mapping[str, Any]) -> str:
    return f"{event['name']}({','.join(_type(i) for i in event['inputs'])})"


def topic0(event: Mapping[str, Any]) -> str:
    return "0x" + keccak(text=event_signature(event)).hex()


def load_abis(names: Iterable[str] = INDEXED_CONTRACTS, build: Path | None = None) -> dict[str, list[dict]]:
    """{contract name: ABI} for the compiled contracts among `names` (missing ones are skipped)."""
    path = Path(build or contracts.source())
    types: dict[str, Any] = {}
    if path.exists():
        types = json.loads(path.read_text()).get("contractTypes", {})
    else:  # pragma: no cover - fall back to ape compiling the project
        try:
            from ape import project

            for n in names:
                try:
                    types[n] = {
                        "abi": [a.model_dump(mode="json", by_alias=True) for a in getattr(project, n).contract_type.abi]
                    }
                except AttributeError:
                    pass
        except Exception as exc:
            raise AbiError(
                f"no compiled ABIs at {path} and ape could not load the project ({exc}); "
                "run 'ape compile' in the CodexField project"
            ) from exc
    return {n: types[n]["abi"] for n in names if n in types}


@dataclass(frozen=True)
class DecodedEvent:
    contract: str
    name: str
    address: str
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    args: dict[str, Any]


def _hex(x: Any) -> str:
    if isinstance(x, (bytes, bytearray)):
        return "0x" + bytes(x).hex()
    s = str(x)
    return s if s.startswith("0x") else "0x" + s


class EventDecoder:
    """Decodes raw logs of the contracts in `addresses` ({name: address}) with the compiled ABIs."""

    def __init__(self, addresses: Mapping[str, str], abis: Mapping[str, list[dict]] | None = None):
        abis = abis if abis is not None else load_abis(addresses)
        self.names = {a.lower(): n for n, a in addresses.items() if n in abis}
        self.events: dict[tuple[str, str], dict] = {}
        for name in set(self.names.values()):
            for item in abis[name]:
                if item.get("type") == "event" and not item.get("anonymous"):
                    self.events[(name, topic0(item))] = item

    @property
    def addresses(self) -> list[str]:
        return [to_checksum_address(a) for a in self.names]

    def decode(self, log: Mapping[str, Any]) -> DecodedEvent | None:
        address = str(log["address"]).lower()
        name = self.names.get(address)
        topics = [_hex(t) for t in log["topics"]]
        if name is None or not topics:
            return None
        event = self.events.get((name, topics[0]))
        if event is None:
            return None
        indexed = [i for i in event["inputs"] if i.get("indexed")]
        plain = [i for i in event["inputs"] if not i.get("indexed")]
        args: dict[str, Any] = {}
        for inp, topic in zip(indexed, topics[1:]):
            t = _type(inp)
            if t in ("string", "bytes") or t.endswith("]") or t.startswith("("):
                args[inp["name"]] = bytes.fromhex(topic[2:])  # hashed dynamic value
            else:
                args[inp["name"]] = abi_decode([t], bytes.fromhex(topic[2:]))[0]
        data = log["data"]
        data = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        values = abi_decode([_type(i) for i in plain], data) if plain else ()
        for inp, v in zip(plain, values):
            args[inp["name"]] = v
        for inp in event["inputs"]:
            if _type(inp) == "address":
                args[inp["name"]] = to_checksum_address(args[inp["name"]])
        return DecodedEvent(
            contract=name,
            name=event["name"],
            address=to_checksum_address(address),
            block_number=int(log["blockNumber"]),
            block_hash=_hex(log["blockHash"]),
            log_index=int(log["logIndex"]),
            tx_hash=_hex(log["transactionHash"]),
            args=args,
        )
