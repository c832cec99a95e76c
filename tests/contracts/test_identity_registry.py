"""IdentityRegistry: the ERC-1056 registry (DESIGN §3.1), checked against the standard's ABI
and signed-message layout, with keys made here and signatures over raw digests."""

from __future__ import annotations

import ape
import pytest
from eth_abi.packed import encode_packed
from eth_account import Account
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector, keccak

from codexfield.did import SIG_AUTH, VERI_KEY, attribute_name, delegate_type, pack_args, signed_digest

# An x in [1, n) with x^3 + 7 a non-residue mod p: no secp256k1 point has it.
NOT_ON_CURVE_X = 5
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ZERO = "0x0000000000000000000000000000000000000000"
PUB_NAME = attribute_name("did/pub/Secp256k1/veriKey/hex")
PUB_VALUE = bytes.fromhex("02b97c30de767f084ce3080168ee293053ba33b235d7116a3263d29f1450936b71")

# The standard contract's external surface (uport-project/ethr-did-registry,
# contracts/EthereumDIDRegistry.sol, the v, r, s variants deployed at 0xdca7ef03...).
STANDARD_FUNCTIONS = [
    "owners(address)",
    "delegates(address,bytes32,address)",
    "changed(address)",
    "nonce(address)",
    "identityOwner(address)",
    "validDelegate(address,bytes32,address)",
    "changeOwner(address,address)",
    "changeOwnerSigned(address,uint8,bytes32,bytes32,address)",
    "addDelegate(address,bytes32,address,uint256)",
    "addDelegateSigned(address,uint8,bytes32,bytes32,bytes32,address,uint256)",
    "revokeDelegate(address,bytes32,address)",
    "revokeDelegateSigned(address,uint8,bytes32,bytes32,bytes32,address)",
    "setAttribute(address,bytes32,bytes,uint256)",
    "setAttributeSigned(address,uint8,bytes32,bytes32,bytes32,bytes,uint256)",
    "revokeAttribute(address,bytes32,bytes)",
    "revokeAttributeSigned(address,uint8,bytes32,bytes32,bytes32,bytes)",
]
STANDARD_EVENTS = [
    "DIDOwnerChanged(address,address,uint256)",
    "DIDDelegateChanged(address,bytes32,address,uint256,uint256)",
    "DIDAttributeChanged(address,bytes32,bytes,uint256,uint256)",
]


@pytest.fixture(scope="module")
def ids(project, admin):
    return admin.deploy(project.IdentityRegistry)


@pytest.fixture
def key():
    """A fresh identity key that never sends a transaction (its calls are relayed)."""
    return Account.create()


def digest(registry, owner_nonce, identity, method, types, values):
    """The standard's message, built independently with Solidity packed encoding."""
    return keccak(
        encode_packed(
            ["bytes1", "bytes1", "address", "uint256", "address", "string", *types],
            [b"\x19", b"\x00", registry.address, owner_nonce, identity, method, *values],
        )
    )


def owner_nonce(ids, owner):
    """`nonce(owner)`: ape's `ids.nonce` is the contract account's own nonce, so call by name."""
    return ids.call_view_method("nonce", owner)


def sign(account, h):
    sig = Account.unsafe_sign_hash(h, account.key)
    return sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")


def sign_change_owner(ids, signer, identity, new_owner):
    h = digest(ids, owner_nonce(ids, signer.address), identity, "changeOwner", ["address"], [new_owner])
    return sign(signer, h)


# ------------------------------------------------------------------ ABI


def test_abi__selectors_and_event_topics__match_the_standard(ids):
    ours = ids.contract_type.method_identifiers  # {"name(types)": "0x<selector>"}
    assert set(ours) == set(STANDARD_FUNCTIONS)
    for sig in STANDARD_FUNCTIONS:
        assert ours[sig] == "0x" + function_signature_to_4byte_selector(sig).hex()
    topics = {e.selector: "0x" + keccak(text=e.selector).hex() for e in ids.contract_type.events}
    assert set(topics) == set(STANDARD_EVENTS)
    for sig in STANDARD_EVENTS:
        assert topics[sig] == "0x" + event_signature_to_log_topic(sig).hex()


def test_sig_auth__is_ascii_right_padded():
    assert SIG_AUTH == b"sigAuth" + b"\x00" * 25
    assert delegate_type("veriKey") == VERI_KEY
    with pytest.raises(ValueError):
        delegate_type("x" * 33)


# ------------------------------------------------------------------ owner


def test_identity_owner__unset__is_the_identity_itself(ids, creator):
    assert ids.identityOwner(creator) == creator
    assert ids.owners(creator) == ZERO
    assert ids.changed(creator) == 0


def test_change_owner__by_owner__moves_control_and_logs(ids, creator, licensor, stranger):
    tx = ids.changeOwner(creator, licensor, sender=creator)
    assert ids.identityOwner(creator) == licensor
    assert ids.owners(creator) == licensor
    [ev] = tx.events.filter(ids.DIDOwnerChanged)
    assert ev.identity == creator and ev.owner == licensor and ev.previousChange == 0
    assert ids.changed(creator) == tx.block_number
    # the old key lost control, the new one has it
    with ape.reverts("identity: not owner"):
        ids.changeOwner(creator, creator, sender=creator)
    ids.changeOwner(creator, stranger, sender=licensor)
    assert ids.identityOwner(creator) == stranger


def test_change_owner__by_stranger__reverts(ids, creator, stranger):
    with ape.reverts("identity: not owner"):
        ids.changeOwner(creator, stranger, sender=stranger)


def test_change_owner__to_zero__hands_identity_back_to_itself(ids, creator, licensor):
    ids.changeOwner(creator, licensor, sender=creator)
    tx = ids.changeOwner(creator, ZERO, sender=licensor)
    assert tx.events.filter(ids.DIDOwnerChanged)[0].owner == ZERO
    assert ids.identityOwner(creator) == creator


def test_changed__links_each_event_to_the_previous_change(ids, creator, licensor):
    tx1 = ids.addDelegate(creator, SIG_AUTH, licensor, 100, sender=creator)
    tx2 = ids.setAttribute(creator, PUB_NAME, PUB_VALUE, 100, sender=creator)
    tx3 = ids.changeOwner(creator, licensor, sender=creator)
    assert tx1.events[0].previousChange == 0
    assert tx2.events[0].previousChange == tx1.block_number
    assert tx3.events[0].previousChange == tx2.block_number
    assert ids.changed(creator) == tx3.block_number > tx2.block_number > tx1.block_number


# ------------------------------------------------------------------ delegates


def test_add_delegate__stores_expiry_under_hashed_type(ids, creator, licensor):
    tx = ids.addDelegate(creator, SIG_AUTH, licensor, 3600, sender=creator)
    valid_to = tx.timestamp + 3600
    [ev] = tx.events.filter(ids.DIDDelegateChanged)
    assert (ev.identity, ev.delegateType, ev.delegate, ev.validTo, ev.previousChange) == (
        creator,
        SIG_AUTH,
        licensor,
        valid_to,
        0,
    )
    assert ids.delegates(creator, keccak(SIG_AUTH), licensor) == valid_to
    assert ids.validDelegate(creator, SIG_AUTH, licensor)
    assert not ids.validDelegate(creator, VERI_KEY, licensor)  # typed
    assert not ids.validDelegate(licensor, SIG_AUTH, creator)  # directed


def test_valid_delegate__expires_exactly_at_valid_to(ids, chain, creator, licensor):
    tx = ids.addDelegate(creator, SIG_AUTH, licensor, 100, sender=creator)
    valid_to = tx.timestamp + 100
    chain.mine(timestamp=valid_to - 1)
    assert chain.blocks.head.timestamp == valid_to - 1
    assert ids.validDelegate(creator, SIG_AUTH, licensor)
    chain.mine(timestamp=valid_to)
    assert not ids.validDelegate(creator, SIG_AUTH, licensor)


def test_add_delegate__by_stranger__reverts(ids, creator, stranger):
    with ape.reverts("identity: not owner"):
        ids.addDelegate(creator, SIG_AUTH, stranger, 100, sender=stranger)


def test_add_delegate__by_a_delegate__reverts(ids, creator, licensor, stranger):
    ids.addDelegate(creator, SIG_AUTH, licensor, 100, sender=creator)
    with ape.reverts("identity: not owner"):
        ids.addDelegate(creator, SIG_AUTH, stranger, 100, sender=licensor)


def test_add_delegate__after_owner_change__only_new_owner_may(ids, creator, licensor, stranger):
    ids.changeOwner(creator, licensor, sender=creator)
    with ape.reverts("identity: not owner"):
        ids.addDelegate(creator, SIG_AUTH, stranger, 100, sender=creator)
    ids.addDelegate(creator, SIG_AUTH, stranger, 100, sender=licensor)
    assert ids.validDelegate(creator, SIG_AUTH, stranger)


def test_add_delegate__overflowing_validity__reverts(ids, creator, licensor):
    with ape.reverts("identity: validity overflow"):
        ids.addDelegate(creator, SIG_AUTH, licensor, 2**256 - 1, sender=creator)


def test_revoke_delegate__invalid_from_that_block(ids, creator, licensor):
    ids.addDelegate(creator, SIG_AUTH, licensor, 10_000, sender=creator)
    tx = ids.revokeDelegate(creator, SIG_AUTH, licensor, sender=creator)
    [ev] = tx.events.filter(ids.DIDDelegateChanged)
    assert ev.validTo == tx.timestamp and ev.delegate == licensor and ev.delegateType == SIG_AUTH
    assert ids.delegates(creator, keccak(SIG_AUTH), licensor) == tx.timestamp
    assert not ids.validDelegate(creator, SIG_AUTH, licensor)


def test_revoke_delegate__only_that_type_and_delegate(ids, creator, licensor, consumer):
    ids.addDelegate(creator, SIG_AUTH, licensor, 10_000, sender=creator)
    ids.addDelegate(creator, VERI_KEY, licensor, 10_000, sender=creator)
    ids.addDelegate(creator, SIG_AUTH, consumer, 10_000, sender=creator)
    ids.revokeDelegate(creator, SIG_AUTH, licensor, sender=creator)
    assert not ids.validDelegate(creator, SIG_AUTH, licensor)
    assert ids.validDelegate(creator, VERI_KEY, licensor)
    assert ids.validDelegate(creator, SIG_AUTH, consumer)


def test_revoke_delegate__by_stranger__reverts(ids, creator, licensor, stranger):
    ids.addDelegate(creator, SIG_AUTH, licensor, 10_000, sender=creator)
    with ape.reverts("identity: not owner"):
        ids.revokeDelegate(creator, SIG_AUTH, licensor, sender=stranger)


def test_add_delegate__again__overwrites_expiry(ids, creator, licensor):
    ids.addDelegate(creator, SIG_AUTH, licensor, 10_000, sender=creator)
    tx = ids.addDelegate(creator, SIG_AUTH, licensor, 5, sender=creator)
    assert ids.delegates(creator, keccak(SIG_AUTH), licensor) == tx.timestamp + 5


# ------------------------------------------------------------------ attributes


def test_set_attribute__logs_value_and_expiry_stores_only_changed(ids, creator):
    tx = ids.setAttribute(creator, PUB_NAME, PUB_VALUE, 86_400, sender=creator)
    [ev] = tx.events.filter(ids.DIDAttributeChanged)
    assert (ev.identity, ev.name, bytes(ev.value), ev.validTo, ev.previousChange) == (
        creator,
        PUB_NAME,
        PUB_VALUE,
        tx.timestamp + 86_400,
        0,
    )
    assert ids.changed(creator) == tx.block_number


def test_set_attribute__max_length_value__accepted(ids, creator):
    value = bytes(range(256)) * 4
    tx = ids.setAttribute(creator, attribute_name("did/svc/Blob"), value, 1, sender=creator)
    assert bytes(tx.events[0].value) == value


def test_set_attribute__by_stranger__reverts(ids, creator, stranger):
    with ape.reverts("identity: not owner"):
        ids.setAttribute(creator, PUB_NAME, PUB_VALUE, 1, sender=stranger)


def test_revoke_attribute__logs_valid_to_zero(ids, creator):
    t1 = ids.setAttribute(creator, PUB_NAME, PUB_VALUE, 86_400, sender=creator)
    tx = ids.revokeAttribute(creator, PUB_NAME, PUB_VALUE, sender=creator)
    [ev] = tx.events.filter(ids.DIDAttributeChanged)
    assert (ev.name, bytes(ev.value), ev.validTo, ev.previousChange) == (PUB_NAME, PUB_VALUE, 0, t1.block_number)


def test_revoke_attribute__by_stranger__reverts(ids, creator, stranger):
    with ape.reverts("identity: not owner"):
        ids.revokeAttribute(creator, PUB_NAME, PUB_VALUE, sender=stranger)


# ------------------------------------------------------------------ signed variants


def test_change_owner_signed__relayed__changes_owner_and_bumps_nonce(ids, key, stranger, licensor):
    v, r, s = sign_change_owner(ids, key, key.address, licensor.address)
    tx = ids.changeOwnerSigned(key.address, v, r, s, licensor, sender=stranger)
    assert ids.identityOwner(key.address) == licensor
    assert owner_nonce(ids, key.address) == 1
    assert tx.events.filter(ids.DIDOwnerChanged)[0].owner == licensor


def test_change_owner_signed__replayed__reverts(ids, key, stranger, licensor):
    v, r, s = sign_change_owner(ids, key, key.address, key.address)
    ids.changeOwnerSigned(key.address, v, r, s, key.address, sender=stranger)
    with ape.reverts("identity: bad signature"):
        ids.changeOwnerSigned(key.address, v, r, s, key.address, sender=stranger)


def test_change_owner_signed__by_non_owner_key__reverts(ids, key, stranger):
    other = Account.create()
    v, r, s = sign_change_owner(ids, other, key.address, other.address)
    with ape.reverts("identity: bad signature"):
        ids.changeOwnerSigned(key.address, v, r, s, other.address, sender=stranger)


def test_change_owner_signed__other_new_owner_than_signed__reverts(ids, key, stranger, licensor):
    v, r, s = sign_change_owner(ids, key, key.address, licensor.address)
    with ape.reverts("identity: bad signature"):
        ids.changeOwnerSigned(key.address, v, r, s, stranger, sender=stranger)


def test_change_owner_signed__high_s_twin__reverts(ids, key, stranger, licensor):
    v, r, s = sign_change_owner(ids, key, key.address, licensor.address)
    high_s = (N - int.from_bytes(s, "big")).to_bytes(32, "big")
    flipped_v = 55 - v  # 27 <-> 28: the malleated twin recovers the same signer
    with ape.reverts("identity: bad signature"):
        ids.changeOwnerSigned(key.address, flipped_v, r, high_s, licensor, sender=stranger)
    ids.changeOwnerSigned(key.address, v, r, s, licensor, sender=stranger)  # the low-s original works


@pytest.mark.parametrize("bad_v", [0, 1, 26, 29])
def test_change_owner_signed__v_not_27_or_28__reverts(ids, key, stranger, licensor, bad_v):
    _, r, s = sign_change_owner(ids, key, key.address, licensor.address)
    with ape.reverts("identity: bad signature"):  # 0/1 (raw parity) included
        ids.changeOwnerSigned(key.address, bad_v, r, s, licensor, sender=stranger)


def test_change_owner_signed__zero_r__reverts(ids, key, stranger, licensor):
    v, _, s = sign_change_owner(ids, key, key.address, licensor.address)
    with ape.reverts("identity: bad signature"):
        ids.changeOwnerSigned(key.address, v, b"\x00" * 32, s, licensor, sender=stranger)


def test_signed__nonce_is_the_owners_and_counts_every_signed_call(ids, key, stranger, licensor):
    new_owner = Account.create()
    v, r, s = sign_change_owner(ids, key, key.address, new_owner.address)
    ids.changeOwnerSigned(key.address, v, r, s, new_owner.address, sender=stranger)
    assert owner_nonce(ids, key.address) == 1 and owner_nonce(ids, new_owner.address) == 0
    # the new owner now signs with its own nonce (0), for the old identity
    h = digest(ids, 0, key.address, "addDelegate", ["bytes32", "address", "uint256"], [SIG_AUTH, licensor.address, 60])
    ids.addDelegateSigned(key.address, *sign(new_owner, h), SIG_AUTH, licensor, 60, sender=stranger)
    assert owner_nonce(ids, new_owner.address) == 1
    assert ids.validDelegate(key.address, SIG_AUTH, licensor)
    # the old key's signature (its nonce 1) no longer controls the identity
    h = digest(ids, 1, key.address, "revokeDelegate", ["bytes32", "address"], [SIG_AUTH, licensor.address])
    with ape.reverts("identity: bad signature"):
        ids.revokeDelegateSigned(key.address, *sign(key, h), SIG_AUTH, licensor, sender=stranger)


def test_signed__message_bound_to_this_registry(project, admin, ids, key, stranger, licensor):
    other_registry = admin.deploy(project.IdentityRegistry)
    v, r, s = sign_change_owner(other_registry, key, key.address, licensor.address)
    with ape.reverts("identity: bad signature"):
        ids.changeOwnerSigned(key.address, v, r, s, licensor, sender=stranger)


def test_add_delegate_signed__relayed__adds_delegate(ids, key, stranger, licensor):
    h = digest(ids, 0, key.address, "addDelegate", ["bytes32", "address", "uint256"], [SIG_AUTH, licensor.address, 600])
    tx = ids.addDelegateSigned(key.address, *sign(key, h), SIG_AUTH, licensor, 600, sender=stranger)
    assert ids.validDelegate(key.address, SIG_AUTH, licensor)
    assert tx.events[0].validTo == tx.timestamp + 600
    assert owner_nonce(ids, key.address) == 1
    # replay fails
    with ape.reverts("identity: bad signature"):
        ids.addDelegateSigned(key.address, *sign(key, h), SIG_AUTH, licensor, 600, sender=stranger)


def test_add_delegate_signed__tampered_validity__reverts(ids, key, stranger, licensor):
    h = digest(ids, 0, key.address, "addDelegate", ["bytes32", "address", "uint256"], [SIG_AUTH, licensor.address, 600])
    with ape.reverts("identity: bad signature"):
        ids.addDelegateSigned(key.address, *sign(key, h), SIG_AUTH, licensor, 10**9, sender=stranger)


def test_revoke_delegate_signed__relayed__revokes(ids, key, stranger, licensor):
    h = digest(ids, 0, key.address, "addDelegate", ["bytes32", "address", "uint256"], [VERI_KEY, licensor.address, 600])
    ids.addDelegateSigned(key.address, *sign(key, h), VERI_KEY, licensor, 600, sender=stranger)
    h = digest(ids, 1, key.address, "revokeDelegate", ["bytes32", "address"], [VERI_KEY, licensor.address])
    tx = ids.revokeDelegateSigned(key.address, *sign(key, h), VERI_KEY, licensor, sender=stranger)
    assert not ids.validDelegate(key.address, VERI_KEY, licensor)
    assert tx.events[0].validTo == tx.timestamp
    assert owner_nonce(ids, key.address) == 2
    with ape.reverts("identity: bad signature"):
        ids.revokeDelegateSigned(key.address, *sign(key, h), VERI_KEY, licensor, sender=stranger)


def test_set_attribute_signed__relayed__logs_attribute(ids, key, stranger):
    h = digest(ids, 0, key.address, "setAttribute", ["bytes32", "bytes", "uint256"], [PUB_NAME, PUB_VALUE, 99])
    tx = ids.setAttributeSigned(key.address, *sign(key, h), PUB_NAME, PUB_VALUE, 99, sender=stranger)
    [ev] = tx.events.filter(ids.DIDAttributeChanged)
    assert (ev.identity, ev.name, bytes(ev.value), ev.validTo) == (key.address, PUB_NAME, PUB_VALUE, tx.timestamp + 99)
    assert owner_nonce(ids, key.address) == 1
    with ape.reverts("identity: bad signature"):
        ids.setAttributeSigned(key.address, *sign(key, h), PUB_NAME, PUB_VALUE, 99, sender=stranger)


def test_set_attribute_signed__tampered_value__reverts(ids, key, stranger):
    h = digest(ids, 0, key.address, "setAttribute", ["bytes32", "bytes", "uint256"], [PUB_NAME, PUB_VALUE, 99])
    with ape.reverts("identity: bad signature"):
        ids.setAttributeSigned(key.address, *sign(key, h), PUB_NAME, PUB_VALUE + b"\x00", 99, sender=stranger)


def test_revoke_attribute_signed__relayed__logs_valid_to_zero(ids, key, stranger):
    h = digest(ids, 0, key.address, "revokeAttribute", ["bytes32", "bytes"], [PUB_NAME, PUB_VALUE])
    tx = ids.revokeAttributeSigned(key.address, *sign(key, h), PUB_NAME, PUB_VALUE, sender=stranger)
    [ev] = tx.events.filter(ids.DIDAttributeChanged)
    assert (ev.name, bytes(ev.value), ev.validTo) == (PUB_NAME, PUB_VALUE, 0)
    assert owner_nonce(ids, key.address) == 1
    with ape.reverts("identity: bad signature"):
        ids.revokeAttributeSigned(key.address, *sign(key, h), PUB_NAME, PUB_VALUE, sender=stranger)


def test_signed_digest_helper__matches_the_contract(ids, key, stranger, licensor):
    """codexfield.did.signed_digest (used by clients) produces what the registry checks."""
    h = signed_digest(ids.address, 0, key.address, "addDelegate", pack_args(SIG_AUTH, licensor.address, 60))
    ids.addDelegateSigned(key.address, *sign(key, h), SIG_AUTH, licensor, 60, sender=stranger)
    h = signed_digest(ids.address, 1, key.address, "setAttribute", pack_args(PUB_NAME, PUB_VALUE, 60))
    ids.setAttributeSigned(key.address, *sign(key, h), PUB_NAME, PUB_VALUE, 60, sender=stranger)
    assert owner_nonce(ids, key.address) == 2


# ------------------------------------------------------------------ every revert is the registry's


def test_change_owner_signed__r_not_on_the_curve__reverts_with_the_registry_reason(ids, key, stranger, licensor):
    """An in-range r that is no curve x-coordinate: ecrecover finds no key (was snekmate's
    "ecdsa: invalid signature"; now every revert starts with "identity:")."""
    v, _, s = sign_change_owner(ids, key, key.address, licensor.address)
    r = NOT_ON_CURVE_X.to_bytes(32, "big")
    with ape.reverts("identity: bad signature"):
        ids.changeOwnerSigned(key.address, v, r, s, licensor, sender=stranger)


def test_signed__zero_identity_with_unrecoverable_signature__reverts(ids, key, stranger, licensor):
    """identity 0x0 owns itself, so a signature recovering to nothing (zero) must not pass as
    its owner's."""
    v, _, s = sign_change_owner(ids, key, ZERO, licensor.address)
    with ape.reverts("identity: bad signature"):
        ids.changeOwnerSigned(ZERO, v, NOT_ON_CURVE_X.to_bytes(32, "big"), s, licensor, sender=stranger)
    assert ids.identityOwner(ZERO) == ZERO


# ------------------------------------------------------------------ `value`, the ERC-1056 argument name

ATTRIBUTE_FUNCTIONS = {  # the standard ABI's input names (ethr-did-registry EthereumDIDRegistry.json)
    "setAttribute": ["identity", "name", "value", "validity"],
    "setAttributeSigned": ["identity", "sigV", "sigR", "sigS", "name", "value", "validity"],
    "revokeAttribute": ["identity", "name", "value"],
    "revokeAttributeSigned": ["identity", "sigV", "sigR", "sigS", "name", "value"],
}


def test_vyper_0_4_3__refuses_an_input_named_value():
    """Why the contract spells it `value_`: the compiler rejects the standard's name."""
    import vyper
    from vyper.exceptions import ArgumentException

    assert vyper.__version__.startswith("0.4.3")
    with pytest.raises(ArgumentException, match="Cannot use 'value' as a variable name in a function input"):
        vyper.compile_code("@external\ndef f(value: Bytes[10]):\n    pass\n")


def test_standard_abi__has_erc1056_names_and_the_same_selectors(ids):
    from codexfield.did import standard_abi

    raw = [a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in ids.contract_type.abi]
    std = standard_abi(raw)
    names = {f["name"]: [i["name"] for i in f["inputs"]] for f in std if f["type"] == "function"}
    for fn, want in ATTRIBUTE_FUNCTIONS.items():
        assert names[fn] == want
    assert [{**f, "inputs": [{**i, "name": ""} for i in f.get("inputs", [])]} for f in std] == [
        {**f, "inputs": [{**i, "name": ""} for i in f.get("inputs", [])]} for f in raw
    ]  # names only


def test_web3_keyword_call_with_value__works_with_standard_abi(chain, ids, creator):
    """web3.py matches keyword arguments to ABI names: `value=` fails on the Vyper ABI
    (`value_`) and works on `standard_abi`, encoding the same calldata as a positional call."""
    from codexfield.did import standard_abi

    w3 = chain.provider.web3
    raw = [a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in ids.contract_type.abi]
    kw = dict(identity=creator.address, name=PUB_NAME, value=PUB_VALUE, validity=3_600)
    with pytest.raises(Exception, match="setAttribute"):
        w3.eth.contract(address=ids.address, abi=raw).functions.setAttribute(**kw)._encode_transaction_data()
    std = w3.eth.contract(address=ids.address, abi=standard_abi(raw))
    data = std.functions.setAttribute(**kw)._encode_transaction_data()
    positional = (
        w3.eth.contract(address=ids.address, abi=raw)
        .functions.setAttribute(creator.address, PUB_NAME, PUB_VALUE, 3_600)
        ._encode_transaction_data()
    )
    assert data == positional
    tx = creator.transfer(ids.address, 0, data=data)  # the bytes the standard's callers send
    [ev] = ids.DIDAttributeChanged.from_receipt(tx)
    assert (ev.identity, bytes(ev.value)) == (creator.address, PUB_VALUE)
