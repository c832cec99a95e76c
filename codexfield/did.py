"""`did:ethr` for CodexField creators: encodings, signed-message digests and a resolver.

The IdentityRegistry (contracts/IdentityRegistry.vy) is an ERC-1056 registry, so a creator's
DID is `did:ethr:<chainId hex>:<address>` (e.g. `did:ethr:0x7a69:0xAb..` on anvil) and its
DID document is rebuilt from the registry's events exactly as the did:ethr method spec and
the reference resolver (decentralized-identity/ethr-did-resolver) do it:

- `change_log(contract, address)` walks the `changed(identity)` / `previousChange` linked
  list backwards, one block at a time, through the ape contract instance (the only part
  that reads the chain);
- `build_document(...)` is a pure function of that event list;
- `resolve(did, contract, chain_id)` joins both into a DID resolution result
  (`didDocument`, `didDocumentMetadata`, `didResolutionMetadata`).

Delegate types and attribute names are bytes32 ASCII strings right-padded with zeros:
`delegate_type("sigAuth")` is what the UsageMeter passes to `validDelegate` (`SIG_AUTH`).

CLI (codexfield/cli/did.py): `codexfield did resolve did:ethr:0x7a69:0x... --network ethereum:local:foundry`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eth_utils import keccak, to_checksum_address

NULL_ADDRESS = "0x0000000000000000000000000000000000000000"

# The standard registry's deployment on most public networks (for reference; CodexField
# deploys its own, listed in the address book under "IdentityRegistry").
DEFAULT_REGISTRY_ADDRESS = "0xdca7ef03e98e0dc2b855be647c39abe984fcf21b"

# Largest attribute value the CodexField registry accepts (IdentityRegistry MAX_VALUE_LENGTH).
MAX_VALUE_LENGTH = 1024

# Function-input names Vyper 0.4.3 cannot use ("Cannot use 'value' as a variable name in a
# function input": `value`/`gas` are its external-call keywords), spelled with a trailing
# underscore in contracts/IdentityRegistry.vy, mapped back to ERC-1056's names. Names are no
# part of selectors or calldata, so only keyword-argument callers (web3.py) see them:
# `standard_abi` gives them the standard's, tools/gen_solidity_interfaces.py the Solidity mirror.
VYPER_INPUT_RENAMES = {"value_": "value"}

EVENT_OWNER = "DIDOwnerChanged"
EVENT_DELEGATE = "DIDDelegateChanged"
EVENT_ATTRIBUTE = "DIDAttributeChanged"
EVENT_NAMES = (EVENT_OWNER, EVENT_DELEGATE, EVENT_ATTRIBUTE)

# Verification method types (ethr-did-resolver `verificationMethodTypes`).
RECOVERY_2020 = "EcdsaSecp256k1RecoveryMethod2020"
SECP256K1_2019 = "EcdsaSecp256k1VerificationKey2019"

# Attribute purposes and `<algorithm><purpose type>` -> verification method type, as the
# reference resolver maps the legacy names (`did/pub/Secp256k1/veriKey/hex` ->
# EcdsaSecp256k1VerificationKey2019). Unknown combinations fall back to the algorithm name.
LEGACY_ATTR_TYPES = {
    "sigAuth": "SignatureAuthentication2018",
    "veriKey": "VerificationKey2018",
    "enc": "KeyAgreementKey2019",
}
LEGACY_ALGO_MAP = {
    "Secp256k1VerificationKey2018": SECP256K1_2019,
    "Ed25519SignatureAuthentication2018": "Ed25519VerificationKey2018",
    "Secp256k1SignatureAuthentication2018": SECP256K1_2019,
    "RSAVerificationKey2018": "RSAVerificationKey2018",
    "Ed25519VerificationKey2018": "Ed25519VerificationKey2018",
    "X25519KeyAgreementKey2019": "X25519KeyAgreementKey2019",
}

LD_CONTEXT = [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/suites/secp256k1recovery-2020/v2",
    "https://w3id.org/security/v3-unstable",
]

_ATTRIBUTE = re.compile(r"^did/(pub|svc)/(\w+)(/(\w+))?(/(\w+))?$", re.ASCII)
_IDENTIFIER = re.compile(r"^(.*)?(0x[0-9a-fA-F]{40}|0x[0-9a-fA-F]{66})$")


class DIDError(ValueError):
    """A DID or a name that is not valid for did:ethr (the message says how to fix it)."""


# --------------------------------------------------------------------------- encodings


def standard_abi(abi: Iterable[dict]) -> list[dict]:
    """The IdentityRegistry's compiled ABI with ERC-1056's input names (`value_` -> `value`).

    Selectors, event topics and types are untouched (names are not part of them), so the
    result drives the same contract; with it web3.py keyword calls written for the standard
    EthereumDIDRegistry work unchanged:
    `w3.eth.contract(address, abi=standard_abi(abi)).functions.setAttribute(identity=..,
    name=.., value=.., validity=..)`.
    """
    out = []
    for item in abi:
        item = dict(item)
        if item.get("type") == "function":
            item["inputs"] = [
                {**i, "name": VYPER_INPUT_RENAMES.get(i.get("name", ""), i.get("name", ""))}
                for i in item.get("inputs", [])
            ]
        out.append(item)
    return out


def delegate_type(name: str) -> bytes:
    """`name` as did:ethr encodes delegate types and attribute names: ASCII, right-padded to 32 bytes."""
    raw = name.encode("utf-8")
    if len(raw) > 32:
        raise DIDError(f"{name!r} is {len(raw)} bytes; delegate types and attribute names fit in 32 bytes")
    return raw.ljust(32, b"\x00")


attribute_name = delegate_type

# The delegate type that may sign usage vouchers for its identity (DESIGN §3.1).
SIG_AUTH: bytes = delegate_type("sigAuth")
# A plain signing key.
VERI_KEY: bytes = delegate_type("veriKey")


def bytes32_to_string(value: bytes) -> str:
    """A bytes32 name back to text: UTF-8, trailing zero bytes dropped (ethr-did-resolver `bytes32toString`)."""
    return bytes(value).decode("utf-8", errors="replace").rstrip("\x00")


def did_for(address: str, chain_id: int | None = None) -> str:
    """`did:ethr:<chainId hex>:<address>` (or `did:ethr:<address>` without a chain id)."""
    address = to_checksum_address(address)
    return f"did:ethr:{hex(chain_id)}:{address}" if chain_id is not None else f"did:ethr:{address}"


# --------------------------------------------------------------------------- signed calls


def signed_digest(registry: str, owner_nonce: int, identity: str, method: str, packed_args: bytes) -> bytes:
    """The digest an identity owner signs for `<method>Signed` (ERC-1056 layout).

    keccak256(0x19 ‖ 0x00 ‖ registry ‖ nonce[identityOwner(identity)] ‖ identity ‖ method ‖ args),
    with `packed_args` the Solidity-packed arguments after the signature (see `pack_args`).
    Sign it as a raw hash (no "Ethereum Signed Message" prefix).
    """
    return keccak(
        b"\x19\x00"
        + bytes.fromhex(to_checksum_address(registry)[2:])
        + owner_nonce.to_bytes(32, "big")
        + bytes.fromhex(to_checksum_address(identity)[2:])
        + method.encode("ascii")
        + packed_args
    )


def pack_args(*args: bytes | str | int) -> bytes:
    """Solidity-packed arguments: address strings as 20 bytes, ints as uint256, bytes as they are."""
    out = b""
    for arg in args:
        if isinstance(arg, str):
            out += bytes.fromhex(to_checksum_address(arg)[2:])
        elif isinstance(arg, int):
            out += arg.to_bytes(32, "big")
        else:
            out += bytes(arg)
    return out


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class RegistryEvent:
    """One ERC-1056 event, decoded (names as text, addresses checksummed, value as bytes)."""

    event: str
    block_number: int
    previous_change: int
    log_index: int = 0
    owner: str | None = None
    delegate_type: str | None = None
    delegate: str | None = None
    name: str | None = None
    value: bytes | None = None
    valid_to: int | None = None

    @classmethod
    def owner_changed(cls, owner: str, block_number: int, previous_change: int = 0, log_index: int = 0):
        return cls(EVENT_OWNER, block_number, previous_change, log_index, owner=to_checksum_address(owner))

    @classmethod
    def delegate_changed(
        cls,
        delegate_type: str,
        delegate: str,
        valid_to: int,
        block_number: int,
        previous_change: int = 0,
        log_index: int = 0,
    ):
        return cls(
            EVENT_DELEGATE,
            block_number,
            previous_change,
            log_index,
            delegate_type=delegate_type,
            delegate=to_checksum_address(delegate),
            valid_to=valid_to,
        )

    @classmethod
    def attribute_changed(
        cls, name: str, value: bytes, valid_to: int, block_number: int, previous_change: int = 0, log_index: int = 0
    ):
        return cls(
            EVENT_ATTRIBUTE, block_number, previous_change, log_index, name=name, value=bytes(value), valid_to=valid_to
        )

    @classmethod
    def from_log(cls, log: Any) -> RegistryEvent:
        """Decode an ape `ContractLog` of one of the three registry events."""
        args = dict(log.event_arguments)
        block, index, prev = int(log.block_number), int(log.log_index), int(args["previousChange"])
        if log.event_name == EVENT_OWNER:
            return cls.owner_changed(args["owner"], block, prev, index)
        if log.event_name == EVENT_DELEGATE:
            return cls.delegate_changed(
                bytes32_to_string(args["delegateType"]), args["delegate"], int(args["validTo"]), block, prev, index
            )
        if log.event_name == EVENT_ATTRIBUTE:
            return cls.attribute_changed(
                bytes32_to_string(args["name"]), bytes(args["value"]), int(args["validTo"]), block, prev, index
            )
        raise DIDError(f"{log.event_name} is not an ERC-1056 registry event")

    def key(self) -> str:
        """The identity of what the event changes (ethr-did-resolver `eventIndex`)."""
        if self.event == EVENT_DELEGATE:
            return f"{self.event}-{self.delegate_type}-{self.delegate}"
        if self.event == EVENT_ATTRIBUTE:
            return f"{self.event}-{self.name}-0x{(self.value or b'').hex()}"
        return f"{self.event}-{self.owner}"


# --------------------------------------------------------------------------- DIDs


@dataclass(frozen=True)
class ParsedDID:
    did: str  # the DID without path, query or fragment
    network: str | None  # "0x7a69", "31337", a name, or None for the connected chain
    address: str  # checksummed identity address
    public_key: str | None = None  # a compressed secp256k1 key when the DID names one
    query: dict[str, str] = field(default_factory=dict)


def parse_did(did: str) -> ParsedDID:
    """Split `did:ethr:[<network>:]<address or compressed public key>[?versionId=N]`."""
    text = did.strip()
    text = text.split("#", 1)[0]
    text, _, query_text = text.partition("?")
    if not text.startswith("did:ethr:"):
        raise DIDError(f"{did!r} is not a did:ethr DID; expected did:ethr:<chainId hex>:<address>")
    match = _IDENTIFIER.match(text[len("did:ethr:") :])
    if not match:
        raise DIDError(f"{did!r} does not end in a 0x-address (40 hex digits) or compressed public key (66 hex digits)")
    network = match.group(1)[:-1] if match.group(1) else None
    ident = match.group(2)
    public_key = None
    if len(ident) > 42:
        from eth_keys import keys

        try:
            pub = keys.PublicKey.from_compressed_bytes(bytes.fromhex(ident[2:]))
        except Exception as exc:  # noqa: BLE001 - eth_keys raises several types
            raise DIDError(f"{ident} is not a compressed secp256k1 public key: {exc}") from None
        public_key, address = ident, pub.to_checksum_address()
    else:
        address = to_checksum_address(ident)
    query = dict(part.split("=", 1) for part in query_text.split("&") if "=" in part)
    return ParsedDID(did=text, network=network, address=address, public_key=public_key, query=query)


# did:ethr network names (ethr-did-resolver's) for the chains CodexField deploys to. A DID
# without a network part means mainnet (the method spec); besides these names, a network is
# named by its chain id in lowercase hex without leading zeros (`0x7a69`), as the reference
# resolver keys its networks (`0x${chainId.toString(16)}`): `31337` or `0x7A69` name nothing.
NETWORK_NAMES = {"mainnet": 1, "sepolia": 11155111}
DEFAULT_NETWORK_NAME = "mainnet"


def network_chain_id(network: str | None) -> int | None:
    """The chain id a DID's network part names (`0x7a69`, `sepolia`, None = mainnet); None if
    the reference resolver would not know it (`31337`, `0x7A69`, `nowhere`)."""
    if network is None:
        network = DEFAULT_NETWORK_NAME
    if network in NETWORK_NAMES:
        return NETWORK_NAMES[network]
    if re.fullmatch(r"0x[1-9a-f][0-9a-f]*", network):
        return int(network, 16)
    return None


# --------------------------------------------------------------------------- document


def build_document(
    did: str,
    address: str,
    history: Iterable[RegistryEvent],
    chain_id: int,
    now: int,
    block_height: int | None = None,
    controller_key: str | None = None,
) -> tuple[dict[str, Any], bool, int, int | None]:
    """The DID document of `address` from its chronological event history (pure).

    Mirrors ethr-did-resolver's `wrapDidDocument`: delegates and attributes count while
    `validTo >= now` (the method spec's rule; the registry's `validDelegate` uses `>`, so in
    a delegate's last second the document lists it and the chain no longer accepts it);
    `#delegate-N` numbers every delegate and `did/pub` attribute event in
    order (expired and revoked ones included, so ids are stable), `#service-N` every
    `did/svc` event; a revocation removes the entry with the same type/name and
    delegate/value; an owner change to 0x0 deactivates the DID. With `block_height`, events
    after it are ignored (historical version).

    Returns (document without @context, deactivated, versionId, nextVersionId or None).
    """
    controller = to_checksum_address(address)
    authentication = [f"{did}#controller"]
    assertion = [f"{did}#controller"]
    version_id, next_version_id = 0, None
    deactivated = False
    delegate_count = service_count = 0
    auth: dict[str, str] = {}
    key_agreement: dict[str, str] = {}
    signing: dict[str, str] = {}
    methods: dict[str, dict[str, Any]] = {}
    services: dict[str, dict[str, Any]] = {}

    for event in history:
        if block_height is not None and event.block_number > block_height:
            if next_version_id is None or event.block_number < next_version_id:
                next_version_id = event.block_number
            continue
        version_id = max(version_id, event.block_number)
        key = event.key()
        valid_to = event.valid_to or 0
        if valid_to and valid_to >= now:
            if event.event == EVENT_DELEGATE:
                delegate_count += 1
                ref = f"{did}#delegate-{delegate_count}"
                if event.delegate_type in ("sigAuth", "veriKey"):
                    if event.delegate_type == "sigAuth":
                        auth[key] = ref
                    methods[key] = {
                        "id": ref,
                        "type": RECOVERY_2020,
                        "controller": did,
                        "blockchainAccountId": f"eip155:{chain_id}:{event.delegate}",
                    }
                    signing[key] = ref
            elif event.event == EVENT_ATTRIBUTE:
                match = _ATTRIBUTE.match(event.name or "")
                if not match:
                    continue
                section, algorithm, purpose, encoding = match.group(1), match.group(2), match.group(4), match.group(6)
                value = event.value or b""
                if section == "pub":
                    delegate_count += 1
                    ref = f"{did}#delegate-{delegate_count}"
                    legacy = f"{algorithm}{LEGACY_ATTR_TYPES.get(purpose, purpose)}"
                    method: dict[str, Any] = {
                        "id": ref,
                        "type": LEGACY_ALGO_MAP.get(legacy, algorithm),
                        "controller": did,
                    }
                    method.update(_encode_key(value, encoding))
                    methods[key] = method
                    if purpose == "sigAuth":
                        auth[key] = ref
                        signing[key] = ref
                    elif purpose == "enc":
                        key_agreement[key] = ref
                    else:
                        signing[key] = ref
                else:
                    service_count += 1
                    try:
                        text = value.decode("utf-8")
                    except UnicodeDecodeError:
                        continue  # not a service endpoint: a non-DID use of the registry
                    try:
                        endpoint: Any = json.loads(text)
                    except ValueError:
                        endpoint = text
                    services[key] = {
                        "id": f"{did}#service-{service_count}",
                        "type": algorithm,
                        "serviceEndpoint": endpoint,
                    }
        elif event.event == EVENT_OWNER:
            controller = event.owner or NULL_ADDRESS
            if controller == NULL_ADDRESS:
                deactivated = True
                break
        else:
            name = event.name or ""
            if event.event == EVENT_DELEGATE or (event.event == EVENT_ATTRIBUTE and name.startswith("did/pub/")):
                delegate_count += 1
            elif event.event == EVENT_ATTRIBUTE and name.startswith("did/svc/"):
                service_count += 1
            for table in (auth, signing, methods, services):
                table.pop(key, None)

    base = {"id": did, "verificationMethod": [], "authentication": [], "assertionMethod": []}
    if deactivated:
        return base, True, version_id, next_version_id

    verification = [
        {
            "id": f"{did}#controller",
            "type": RECOVERY_2020,
            "controller": did,
            "blockchainAccountId": f"eip155:{chain_id}:{controller}",
        }
    ]
    if controller_key and controller == to_checksum_address(address):
        verification.append(
            {
                "id": f"{did}#controllerKey",
                "type": SECP256K1_2019,
                "controller": did,
                "publicKeyHex": controller_key.removeprefix("0x"),
            }
        )
        authentication.append(f"{did}#controllerKey")
        assertion.append(f"{did}#controllerKey")
    document: dict[str, Any] = {
        "id": did,
        "verificationMethod": verification + list(methods.values()),
        "authentication": authentication + list(auth.values()),
        "assertionMethod": assertion + list(signing.values()),
    }
    if services:
        document["service"] = list(services.values())
    if key_agreement:
        document["keyAgreement"] = list(key_agreement.values())
    return document, False, version_id, next_version_id


def _encode_key(value: bytes, encoding: str | None) -> dict[str, str]:
    """A public key attribute value in the property its encoding names."""
    if encoding in (None, "hex"):
        return {"publicKeyHex": value.hex()}
    if encoding == "base64":
        return {"publicKeyBase64": base64.b64encode(value).decode()}
    if encoding == "base58":
        import base58

        return {"publicKeyBase58": base58.b58encode(value).decode()}
    if encoding == "pem":
        return {"publicKeyPem": value.decode("utf-8", errors="replace")}
    return {"value": value.hex()}


# --------------------------------------------------------------------------- chain


def change_log(contract: Any, address: str) -> list[RegistryEvent]:
    """Every registry event of `address`, oldest first, following `changed` / `previousChange`.

    Reads `changed(address)`, then the three events at that block for this identity, then
    the block their first `previousChange` names, until it is 0 (one block per hop, as the
    method spec prescribes; no full-history scan).
    """
    history: list[RegistryEvent] = []
    block = int(contract.changed(address))
    while block:
        events = sorted(_events_at(contract, address, block), key=lambda e: e.log_index)
        if not events:
            raise DIDError(
                f"changed/previousChange points at block {block} but the node returned no registry logs "
                "there; use a node that keeps the full log history (an archive node)"
            )
        history[:0] = events
        earlier = [e.previous_change for e in events if e.previous_change < block]
        block = earlier[0] if earlier else 0
    return history


def _events_at(contract: Any, address: str, block: int) -> list[RegistryEvent]:
    topics = {"identity": address}
    return [
        RegistryEvent.from_log(log)
        for name in EVENT_NAMES
        for log in getattr(contract, name).range(block, block + 1, search_topics=topics)
    ]


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(code: str, message: str) -> dict[str, Any]:
    return {
        "didResolutionMetadata": {"error": code, "message": message},
        "didDocumentMetadata": {},
        "didDocument": None,
    }


def resolve(
    did: str,
    registry_contract: Any,
    chain_id: int,
    now: int | None = None,
    block_timestamp: Callable[[int], int] | None = None,
    ld_context: bool = True,
) -> dict[str, Any]:
    """Resolve a did:ethr DID against the registry behind `registry_contract` (an ape instance).

    `chain_id` is the chain the contract lives on; a DID naming another network resolves to an
    `unknownNetwork` error, a malformed one to `invalidDid` (did-resolver error codes). As in
    the method spec and ethr-did-resolver, `did:ethr:<address>` means mainnet and networks are
    named `0x<chain id hex>` or by name (`network_chain_id`). `now` defaults to the wall clock,
    as in the reference (pass the latest block's timestamp to judge by chain time, e.g. on a
    local chain after time travel: `codexfield did resolve --chain-time`); `?versionId=N`
    resolves the document as of block N, at that block's time.

    Returns {"didDocument", "didDocumentMetadata", "didResolutionMetadata"}; the metadata
    carries `deactivated: true` when the owner was set to 0x0, `versionId`/`updated` (last
    change) and, for historical versions, `nextVersionId`/`nextUpdate`.
    """
    try:
        parsed = parse_did(did)
    except DIDError as exc:
        return _error("invalidDid", str(exc))
    if network_chain_id(parsed.network) != chain_id:
        return _error(
            "unknownNetwork",
            f"The DID resolver does not have a configuration for network: {parsed.network or DEFAULT_NETWORK_NAME}"
            f" (the registry is on chain {chain_id}: use did:ethr:{hex(chain_id)}:{parsed.address})",
        )
    if block_timestamp is None:
        from ape import chain

        def block_timestamp(number: int) -> int:
            return int(chain.blocks[number].timestamp)

    block_height: int | None = None
    if "versionId" in parsed.query:
        try:
            block_height = int(parsed.query["versionId"])
        except ValueError:
            block_height = None
    if block_height is not None:
        now = block_timestamp(block_height)
    elif now is None:
        import time

        now = int(time.time())

    try:
        history = change_log(registry_contract, parsed.address)
        document, deactivated, version_id, next_version_id = build_document(
            parsed.did, parsed.address, history, chain_id, now, block_height, parsed.public_key
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a resolution error
        return _error("notFound", str(exc))

    metadata: dict[str, Any] = {"deactivated": True} if deactivated else {}
    if version_id:
        metadata.update(versionId=str(version_id), updated=_iso(block_timestamp(version_id)))
    if next_version_id is not None:
        metadata.update(nextVersionId=str(next_version_id), nextUpdate=_iso(block_timestamp(next_version_id)))
    if ld_context:
        document = {**document, "@context": list(LD_CONTEXT)}
    return {
        "didDocumentMetadata": metadata,
        "didResolutionMetadata": {"contentType": "application/did+ld+json" if ld_context else "application/did+json"},
        "didDocument": document,
    }
