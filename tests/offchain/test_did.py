"""did:ethr resolution (codexfield.did) against a deployed IdentityRegistry: each test writes a
history on chain, writes the expected DID document by hand (as the did:ethr method spec and
ethr-did-resolver build it) and compares it with `resolve`."""

from __future__ import annotations

import base64
import json

import base58
import pytest
from click.testing import CliRunner
from eth_account import Account
from eth_utils import to_checksum_address

from codexfield import deployments
from codexfield.cli.did import did_command
from codexfield.did import (
    LD_CONTEXT,
    SIG_AUTH,
    VERI_KEY,
    RegistryEvent,
    attribute_name,
    build_document,
    change_log,
    did_for,
    network_chain_id,
    parse_did,
    resolve,
)

CHAIN = 31337
ZERO = "0x0000000000000000000000000000000000000000"
SECP_KEY = bytes.fromhex("02b97c30de767f084ce3080168ee293053ba33b235d7116a3263d29f1450936b71")
ED_KEY = bytes.fromhex("b97c30de767f084ce3080168ee293053ba33b235d7116a3263d29f1450936b71")
X_KEY = bytes(range(32))
DAY = 86_400


@pytest.fixture(scope="module")
def ids(project, admin):
    return admin.deploy(project.IdentityRegistry)


def now(chain):
    return chain.blocks.head.timestamp


def controller_vm(did, owner):
    return {
        "id": f"{did}#controller",
        "type": "EcdsaSecp256k1RecoveryMethod2020",
        "controller": did,
        "blockchainAccountId": f"eip155:{CHAIN}:{owner}",
    }


def delegate_vm(did, n, delegate):
    return {
        "id": f"{did}#delegate-{n}",
        "type": "EcdsaSecp256k1RecoveryMethod2020",
        "controller": did,
        "blockchainAccountId": f"eip155:{CHAIN}:{delegate}",
    }


def doc(did, methods, authentication, assertion, **extra):
    out = {
        "id": did,
        "verificationMethod": methods,
        "authentication": authentication,
        "assertionMethod": assertion,
        **extra,
        "@context": LD_CONTEXT,
    }
    return out


# ------------------------------------------------------------------ DIDs


def test_parse_did__chain_and_bare_forms():
    addr = "0xf3beac30c498d9e26865f34fcaa57dbb935b0d74"
    checksummed = to_checksum_address(addr)
    p = parse_did(f"did:ethr:0x7a69:{addr}?versionId=5#controller")
    assert (p.did, p.network, p.address, p.query) == (
        f"did:ethr:0x7a69:{addr}",
        "0x7a69",
        checksummed,
        {"versionId": "5"},
    )
    assert parse_did(f"did:ethr:{addr}").network is None
    assert did_for(addr, CHAIN) == f"did:ethr:0x7a69:{checksummed}"


def test_network_chain_id__reference_names_only():
    # as ethr-did-resolver keys its networks: names, or 0x + lowercase hex; no network = mainnet
    assert [
        network_chain_id(n) for n in ("0x7a69", "31337", "0x7A69", "0x07a69", "sepolia", "mainnet", "nowhere", None)
    ] == [CHAIN, None, None, None, 11155111, 1, None, 1]


def test_parse_did__compressed_public_key__derives_address():
    acct = Account.create()
    from eth_keys import keys

    pub = keys.PrivateKey(acct.key).public_key.to_compressed_bytes().hex()
    p = parse_did(f"did:ethr:0x7a69:0x{pub}")
    assert p.address == acct.address and p.public_key == f"0x{pub}"


def test_resolve__malformed_did__invalid_did(ids):
    result = resolve("did:ethr:0x7a69:0x1234", ids, CHAIN, now=0)
    assert result["didDocument"] is None
    assert result["didResolutionMetadata"]["error"] == "invalidDid"


def test_resolve__other_chain__unknown_network(ids, creator):
    result = resolve(f"did:ethr:0x1:{creator.address}", ids, CHAIN, now=0)
    assert result["didResolutionMetadata"]["error"] == "unknownNetwork"


# ------------------------------------------------------------------ histories


def test_resolve__unregistered__controller_only(ids, chain, consumer):
    did = did_for(consumer.address, CHAIN)
    result = resolve(did, ids, CHAIN)
    assert result["didDocument"] == doc(
        did, [controller_vm(did, consumer.address)], [f"{did}#controller"], [f"{did}#controller"]
    )
    assert result["didDocumentMetadata"] == {}
    assert result["didResolutionMetadata"] == {"contentType": "application/did+ld+json"}


def test_resolve__bare_did__means_mainnet(ids, creator):
    result = resolve(f"did:ethr:{creator.address}", ids, CHAIN)
    assert result["didResolutionMetadata"]["error"] == "unknownNetwork"
    assert "configuration for network: mainnet" in result["didResolutionMetadata"]["message"]


def test_resolve__owner_changed__controller_is_new_owner(ids, chain, creator, licensor):
    tx = ids.changeOwner(creator, licensor, sender=creator)
    did = did_for(creator.address, CHAIN)
    result = resolve(did, ids, CHAIN)
    assert result["didDocument"] == doc(
        did, [controller_vm(did, licensor.address)], [f"{did}#controller"], [f"{did}#controller"]
    )
    assert result["didDocumentMetadata"]["versionId"] == str(tx.block_number)
    assert "deactivated" not in result["didDocumentMetadata"]


def test_resolve__delegates__sig_auth_authenticates_veri_key_only_signs(ids, creator, licensor, consumer, node):
    ids.addDelegate(creator, SIG_AUTH, licensor, DAY, sender=creator)
    ids.addDelegate(creator, VERI_KEY, consumer, DAY, sender=creator)
    ids.addDelegate(creator, b"custom".ljust(32, b"\x00"), node, DAY, sender=creator)  # counted, not shown
    did = did_for(creator.address, CHAIN)
    c = f"{did}#controller"
    assert resolve(did, ids, CHAIN)["didDocument"] == doc(
        did,
        [
            controller_vm(did, creator.address),
            delegate_vm(did, 1, licensor.address),
            delegate_vm(did, 2, consumer.address),
        ],
        [c, f"{did}#delegate-1"],
        [c, f"{did}#delegate-1", f"{did}#delegate-2"],
    )


def test_resolve__delegate_expired__dropped_numbering_kept(ids, chain, creator, licensor, consumer):
    tx = ids.addDelegate(creator, SIG_AUTH, licensor, 100, sender=creator)
    ids.addDelegate(creator, SIG_AUTH, consumer, DAY, sender=creator)
    did = did_for(creator.address, CHAIN)
    c = f"{did}#controller"
    # listed while validTo >= now (the method spec; the registry's validDelegate says >)
    before = resolve(did, ids, CHAIN, now=tx.timestamp + 100)["didDocument"]
    assert before["authentication"] == [c, f"{did}#delegate-1", f"{did}#delegate-2"]
    chain.mine(timestamp=tx.timestamp + 101)
    assert resolve(did, ids, CHAIN, now=chain.blocks.head.timestamp)["didDocument"] == doc(
        did,
        [controller_vm(did, creator.address), delegate_vm(did, 2, consumer.address)],
        [c, f"{did}#delegate-2"],
        [c, f"{did}#delegate-2"],
    )


def test_resolve__delegate_revoked_then_re_added__gets_a_new_number(ids, creator, licensor):
    ids.addDelegate(creator, VERI_KEY, licensor, DAY, sender=creator)
    ids.revokeDelegate(creator, VERI_KEY, licensor, sender=creator)
    did = did_for(creator.address, CHAIN)
    c = f"{did}#controller"
    base = doc(did, [controller_vm(did, creator.address)], [c], [c])
    assert resolve(did, ids, CHAIN)["didDocument"] == base
    ids.addDelegate(creator, VERI_KEY, licensor, DAY, sender=creator)
    assert resolve(did, ids, CHAIN)["didDocument"] == doc(
        did, [controller_vm(did, creator.address), delegate_vm(did, 3, licensor.address)], [c], [c, f"{did}#delegate-3"]
    )


def test_resolve__public_key_attributes__types_encodings_and_purposes(ids, creator):
    ids.setAttribute(creator, attribute_name("did/pub/Secp256k1/veriKey/hex"), SECP_KEY, DAY, sender=creator)
    ids.setAttribute(creator, attribute_name("did/pub/Ed25519/sigAuth/base64"), ED_KEY, DAY, sender=creator)
    ids.setAttribute(creator, attribute_name("did/pub/X25519/enc/base58"), X_KEY, DAY, sender=creator)
    did = did_for(creator.address, CHAIN)
    c = f"{did}#controller"
    d1, d2, d3 = (f"{did}#delegate-{i}" for i in (1, 2, 3))
    assert resolve(did, ids, CHAIN)["didDocument"] == doc(
        did,
        [
            controller_vm(did, creator.address),
            {"id": d1, "type": "EcdsaSecp256k1VerificationKey2019", "controller": did, "publicKeyHex": SECP_KEY.hex()},
            {
                "id": d2,
                "type": "Ed25519VerificationKey2018",
                "controller": did,
                "publicKeyBase64": base64.b64encode(ED_KEY).decode(),
            },
            {
                "id": d3,
                "type": "X25519KeyAgreementKey2019",
                "controller": did,
                "publicKeyBase58": base58.b58encode(X_KEY).decode(),
            },
        ],
        [c, d2],
        [c, d1, d2],
        keyAgreement=[d3],
    )


def test_resolve__services__url_and_json_endpoints_and_revocation(ids, creator):
    hub = attribute_name("did/svc/HubService")
    node_svc = attribute_name("did/svc/CodexNode")
    ids.setAttribute(creator, hub, b"https://hubs.example", DAY, sender=creator)
    endpoint = {"uri": "https://node.example/v1", "accept": ["mu"]}
    ids.setAttribute(creator, node_svc, json.dumps(endpoint).encode(), DAY, sender=creator)
    ids.setAttribute(creator, hub, b"https://old.example", DAY, sender=creator)
    ids.revokeAttribute(creator, hub, b"https://old.example", sender=creator)
    did = did_for(creator.address, CHAIN)
    c = f"{did}#controller"
    assert resolve(did, ids, CHAIN)["didDocument"] == doc(
        did,
        [controller_vm(did, creator.address)],
        [c],
        [c],
        service=[
            {"id": f"{did}#service-1", "type": "HubService", "serviceEndpoint": "https://hubs.example"},
            {"id": f"{did}#service-2", "type": "CodexNode", "serviceEndpoint": endpoint},
        ],
    )


def test_resolve__revoked_public_key__removed(ids, creator):
    name = attribute_name("did/pub/Secp256k1/sigAuth/hex")
    ids.setAttribute(creator, name, SECP_KEY, DAY, sender=creator)
    ids.revokeAttribute(creator, name, SECP_KEY, sender=creator)
    did = did_for(creator.address, CHAIN)
    c = f"{did}#controller"
    assert resolve(did, ids, CHAIN)["didDocument"] == doc(did, [controller_vm(did, creator.address)], [c], [c])


def test_resolve__signed_changes__resolve_like_direct_ones(ids, stranger, licensor):
    from codexfield.did import pack_args, signed_digest

    key = Account.create()
    h = signed_digest(ids.address, 0, key.address, "addDelegate", pack_args(SIG_AUTH, licensor.address, DAY))
    sig = Account.unsafe_sign_hash(h, key.key)
    ids.addDelegateSigned(
        key.address,
        sig.v,
        sig.r.to_bytes(32, "big"),
        sig.s.to_bytes(32, "big"),
        SIG_AUTH,
        licensor,
        DAY,
        sender=stranger,
    )
    did = did_for(key.address, CHAIN)
    c = f"{did}#controller"
    assert resolve(did, ids, CHAIN)["didDocument"] == doc(
        did,
        [controller_vm(did, key.address), delegate_vm(did, 1, licensor.address)],
        [c, f"{did}#delegate-1"],
        [c, f"{did}#delegate-1"],
    )


def test_resolve__owner_set_to_zero__deactivated(ids, creator):
    ids.addDelegate(creator, SIG_AUTH, creator, DAY, sender=creator)
    tx = ids.changeOwner(creator, ZERO, sender=creator)
    did = did_for(creator.address, CHAIN)
    result = resolve(did, ids, CHAIN)
    assert result["didDocument"] == {
        "id": did,
        "verificationMethod": [],
        "authentication": [],
        "assertionMethod": [],
        "@context": LD_CONTEXT,
    }
    assert result["didDocumentMetadata"]["deactivated"] is True
    assert result["didDocumentMetadata"]["versionId"] == str(tx.block_number)


def test_resolve__version_id__document_as_of_that_block(ids, chain, creator, licensor, consumer):
    t1 = ids.addDelegate(creator, SIG_AUTH, licensor, DAY, sender=creator)
    t2 = ids.changeOwner(creator, consumer, sender=creator)
    did = did_for(creator.address, CHAIN)
    c = f"{did}#controller"
    result = resolve(f"{did}?versionId={t1.block_number}", ids, CHAIN)
    assert result["didDocument"] == doc(
        did,
        [controller_vm(did, creator.address), delegate_vm(did, 1, licensor.address)],
        [c, f"{did}#delegate-1"],
        [c, f"{did}#delegate-1"],
    )
    meta = result["didDocumentMetadata"]
    assert meta["versionId"] == str(t1.block_number) and meta["nextVersionId"] == str(t2.block_number)
    latest = resolve(did, ids, CHAIN)["didDocument"]
    assert latest["verificationMethod"][0] == controller_vm(did, consumer.address)


def test_resolve__same_block_changes__all_read_in_log_order(ids, chain, creator, licensor, consumer):
    """Two changes in one block: the second event's previousChange is that same block."""
    chain.provider.auto_mine = False  # explicit gas: ape's default (the block gas limit) allows one tx per block
    try:
        n = creator.nonce
        ids.addDelegate(
            creator, SIG_AUTH, licensor, DAY, sender=creator, nonce=n, gas=200_000, required_confirmations=0
        )
        ids.addDelegate(
            creator, VERI_KEY, consumer, DAY, sender=creator, nonce=n + 1, gas=200_000, required_confirmations=0
        )
        chain.mine()
    finally:
        chain.provider.auto_mine = True
    did = did_for(creator.address, CHAIN)
    c = f"{did}#controller"
    history = change_log(ids, creator.address)
    assert [e.block_number for e in history] == [chain.blocks.head.number] * 2
    assert history[1].previous_change == chain.blocks.head.number and history[0].previous_change == 0
    assert resolve(did, ids, CHAIN)["didDocument"] == doc(
        did,
        [
            controller_vm(did, creator.address),
            delegate_vm(did, 1, licensor.address),
            delegate_vm(did, 2, consumer.address),
        ],
        [c, f"{did}#delegate-1"],
        [c, f"{did}#delegate-1", f"{did}#delegate-2"],
    )


# ------------------------------------------------------------------ pure part


def test_build_document__is_a_pure_function_of_the_history():
    addr = "0xf3bEAC30C498D9e26865F34fCAa57dBB935b0D74"
    delegate = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    did = f"did:ethr:0x7a69:{addr}"
    history = [
        RegistryEvent.delegate_changed("sigAuth", delegate, 1_000, block_number=10),
        RegistryEvent.delegate_changed("sigAuth", delegate, 500, block_number=11, previous_change=10),  # revoked
    ]
    document, deactivated, version, nxt = build_document(did, addr, history, CHAIN, now=900)
    assert document["authentication"] == [f"{did}#controller"] and not deactivated
    assert (version, nxt) == (11, None)
    document, _, version, nxt = build_document(did, addr, history, CHAIN, now=900, block_height=10)
    assert document["authentication"] == [f"{did}#controller", f"{did}#delegate-1"]
    assert (version, nxt) == (10, 11)


# ------------------------------------------------------------------ CLI


def test_cli__did_resolve__prints_the_resolution_json(ids, creator, licensor, tmp_path, monkeypatch):
    ids.addDelegate(creator, SIG_AUTH, licensor, DAY, sender=creator)
    book = deployments.AddressBook(chain_id=CHAIN, contracts={"IdentityRegistry": ids.address})
    monkeypatch.setattr(deployments, "DEPLOYMENTS_DIR", tmp_path)
    deployments.save(book, "ethereum", "local")
    did = did_for(creator.address, CHAIN)
    result = CliRunner().invoke(did_command, ["resolve", did, "--network", "ethereum:local:foundry"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["didDocument"]["authentication"] == [f"{did}#controller", f"{did}#delegate-1"]


def test_cli__did_resolve__bad_did__explains(ids, tmp_path, monkeypatch):
    book = deployments.AddressBook(chain_id=CHAIN, contracts={"IdentityRegistry": ids.address})
    monkeypatch.setattr(deployments, "DEPLOYMENTS_DIR", tmp_path)
    deployments.save(book, "ethereum", "local")
    result = CliRunner().invoke(did_command, ["resolve", "did:ethr:nope", "--network", "ethereum:local:foundry"])
    assert result.exit_code != 0 and "invalidDid" in result.output
