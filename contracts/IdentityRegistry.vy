# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title IdentityRegistry: CodexField creator DIDs (ERC-1056, `did:ethr`)
@custom:contract-name IdentityRegistry
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice Owns the ERC-1056 "Lightweight Identity" state: who controls each identity address,
        which delegates act for it until when, and (as events only) its DID attributes.
        The ABI is identical to the standard EthereumDIDRegistry
        (uport-project/ethr-did-registry, deployed at 0xdca7ef03e98e0dc2b855be647c39abe984fcf21b),
        so every `did:ethr` resolver and client works against it unchanged. A creator's DID is
        `did:ethr:<chainId hex>:<address>`; every address is an identity that owns itself
        until it calls `changeOwner`. No registration, no roles, no pause: a public good.

        Delegate types are bytes32 ASCII strings right-padded with zeros, as did:ethr encodes
        them: `veriKey` (a signing key) and `sigAuth` (a signing key that may also
        authenticate). The CodexField UsageMeter accepts a usage voucher signed by `signer`
        for `holder` when `signer == holder` or `validDelegate(holder, "sigAuth", signer)`.

        Every `*Signed` function is a meta-transaction: anyone may submit the identity owner's
        signature over
            keccak256(0x19 ‖ 0x00 ‖ this registry ‖ nonce[identityOwner(identity)] ‖ identity ‖
                      "<functionName>" ‖ <the arguments after the signature, packed>)
        (abi.encodePacked: addresses 20 bytes, bytes32/uint256 32 bytes, `bytes` raw), signed
        as a raw digest (no EIP-191 "Ethereum Signed Message" prefix). The owner's nonce then
        increments, so each signature works once.

        Example (Python, ape):
            sig_auth = delegate_type("sigAuth")  # codexfield.did: ASCII, zero-padded
            registry.addDelegate(creator, sig_auth, hot_key, 86_400, sender=creator)
            registry.validDelegate(creator, sig_auth, hot_key)  # True for one day
            registry.setAttribute(creator, attribute_name("did/svc/CodexNode"),
                                  b"https://node.example", 31_536_000, sender=creator)

        Differences from the Solidity original (selectors, event topics and the signed-message
        layout are identical): attribute values are bounded to MAX_VALUE_LENGTH (1024) bytes
        (longer calldata fails ABI decoding); a `validity` that would overflow
        `block.timestamp + validity` reverts with a reason; signatures must have v in {27, 28},
        0 < r < n, 0 < s <= n/2 (no malleable twins; checked by `modules/sig.vy`, shared with
        the UsageMeter); every revert carries a reason string. Events are declared once, in
        `interfaces/IIdentityRegistry.vyi`.
        Vyper reserves `value` as an argument name, so the attribute argument is named `value_`
        in the ABI JSON (selectors, types and the event field `value` are the standard's; only
        keyword-argument callers see the difference).
@custom:security Trusts nothing but ecrecover. Holds no funds and makes no external calls.
        Signed calls are bound to this registry's address and to the owner's nonce, so they
        cannot be replayed here or on another registry; they are not bound to the chain id
        (the standard's layout), so an owner using the same key and nonce on two chains where
        this registry has the same address signs for both. Setting the owner to 0x0 hands the
        identity back to its own key on chain (`identityOwner` falls back to the identity),
        while did:ethr resolvers read the 0x0 owner event as deactivation.
@custom:kill Nothing to pause: no roles, no admin, no upgrade. Identities, delegates and
        attributes can always be changed by their owner and read by anyone.
"""

from interfaces import IIdentityRegistry

implements: IIdentityRegistry

from .modules import sig


# @dev Largest attribute value, in bytes (a public key, a PEM key, a service endpoint JSON).
MAX_VALUE_LENGTH: constant(uint256) = 1024


# @dev Prefix of every signed message: 0x19 (not an RLP-encodable first byte) and version 0x00.
_PREFIX: constant(bytes2) = 0x1900


# @dev Current owner of an identity; zero means the identity owns itself.
owners: public(HashMap[address, address])


# @dev Expiry (unix seconds, exclusive) of each delegate, keyed by identity, keccak256(delegateType)
#      and delegate; a delegate is valid while `block.timestamp < delegates[...]`.
delegates: public(HashMap[address, HashMap[bytes32, HashMap[address, uint256]]])


# @dev Block number of the latest change to an identity (head of its event linked list).
changed: public(HashMap[address, uint256])


# @dev Number of signed (meta-transaction) changes made by each owner address.
nonce: public(HashMap[address, uint256])


@external
@view
def identityOwner(identity: address) -> address:
    """
    @dev Reads `owners`, falling back to the identity itself.
    @notice The address that controls `identity`.
    @param identity The identity address.
    @return address The current owner (the identity itself unless it was changed).
    """
    return self._identity_owner(identity)


@external
@view
def validDelegate(identity: address, delegateType: bytes32, delegate: address) -> bool:
    """
    @dev Valid while `block.timestamp < validTo`: a delegate expires exactly at its validTo.
    @notice Whether `delegate` currently acts for `identity` as `delegateType`.
    @param identity The identity address.
    @param delegateType The delegate type, ASCII right-padded to bytes32 (`sigAuth`, `veriKey`).
    @param delegate The delegate address.
    @return bool True if the delegate is valid now.
    """
    return self.delegates[identity][keccak256(delegateType)][delegate] > block.timestamp


@external
def changeOwner(identity: address, newOwner: address):
    """
    @dev Emits `DIDOwnerChanged`. Setting 0x0 reads as "deactivated" to did:ethr resolvers.
    @notice Hands control of `identity` to `newOwner`; only the current owner may call.
    @param identity The identity address.
    @param newOwner The new owner.
    """
    self._change_owner(identity, msg.sender, newOwner)


@external
def changeOwnerSigned(identity: address, sigV: uint8, sigR: bytes32, sigS: bytes32, newOwner: address):
    """
    @dev Message: 0x1900 ‖ this ‖ nonce[owner] ‖ identity ‖ "changeOwner" ‖ newOwner.
    @notice `changeOwner` with the owner's signature, submitted by anyone.
    @param identity The identity address.
    @param sigV The signature's v (27 or 28).
    @param sigR The signature's r.
    @param sigS The signature's s (at most n/2).
    @param newOwner The new owner.
    """
    digest: bytes32 = self._digest(identity, concat(b"changeOwner", convert(newOwner, bytes20)))
    self._change_owner(identity, self._check_signature(identity, sigV, sigR, sigS, digest), newOwner)


@external
def addDelegate(identity: address, delegateType: bytes32, delegate: address, validity: uint256):
    """
    @dev Sets the expiry to `block.timestamp + validity` (re-adding overwrites it) and emits
         `DIDDelegateChanged`.
    @notice Lets `delegate` act for `identity` as `delegateType` for `validity` seconds.
    @param identity The identity address.
    @param delegateType The delegate type, ASCII right-padded to bytes32.
    @param delegate The delegate address.
    @param validity Seconds from now until the delegate expires.
    """
    self._add_delegate(identity, msg.sender, delegateType, delegate, validity)


@external
def addDelegateSigned(
    identity: address,
    sigV: uint8,
    sigR: bytes32,
    sigS: bytes32,
    delegateType: bytes32,
    delegate: address,
    validity: uint256,
):
    """
    @dev Message: 0x1900 ‖ this ‖ nonce[owner] ‖ identity ‖ "addDelegate" ‖ delegateType ‖
         delegate ‖ validity.
    @notice `addDelegate` with the owner's signature, submitted by anyone.
    @param identity The identity address.
    @param sigV The signature's v (27 or 28).
    @param sigR The signature's r.
    @param sigS The signature's s (at most n/2).
    @param delegateType The delegate type, ASCII right-padded to bytes32.
    @param delegate The delegate address.
    @param validity Seconds from now until the delegate expires.
    """
    digest: bytes32 = self._digest(
        identity,
        concat(b"addDelegate", delegateType, convert(delegate, bytes20), convert(validity, bytes32)),
    )
    self._add_delegate(
        identity, self._check_signature(identity, sigV, sigR, sigS, digest), delegateType, delegate, validity
    )


@external
def revokeDelegate(identity: address, delegateType: bytes32, delegate: address):
    """
    @dev Sets the expiry to `block.timestamp` (invalid from this block on) and emits
         `DIDDelegateChanged` with `validTo = block.timestamp`.
    @notice Revokes `delegate` of type `delegateType` for `identity`.
    @param identity The identity address.
    @param delegateType The delegate type, ASCII right-padded to bytes32.
    @param delegate The delegate address.
    """
    self._revoke_delegate(identity, msg.sender, delegateType, delegate)


@external
def revokeDelegateSigned(
    identity: address, sigV: uint8, sigR: bytes32, sigS: bytes32, delegateType: bytes32, delegate: address
):
    """
    @dev Message: 0x1900 ‖ this ‖ nonce[owner] ‖ identity ‖ "revokeDelegate" ‖ delegateType ‖
         delegate.
    @notice `revokeDelegate` with the owner's signature, submitted by anyone.
    @param identity The identity address.
    @param sigV The signature's v (27 or 28).
    @param sigR The signature's r.
    @param sigS The signature's s (at most n/2).
    @param delegateType The delegate type, ASCII right-padded to bytes32.
    @param delegate The delegate address.
    """
    digest: bytes32 = self._digest(identity, concat(b"revokeDelegate", delegateType, convert(delegate, bytes20)))
    self._revoke_delegate(identity, self._check_signature(identity, sigV, sigR, sigS, digest), delegateType, delegate)


@external
def setAttribute(identity: address, name: bytes32, value_: Bytes[MAX_VALUE_LENGTH], validity: uint256):
    """
    @dev Stores nothing but `changed`; the attribute lives in the `DIDAttributeChanged` event
         with `validTo = block.timestamp + validity`.
    @notice Publishes a DID attribute: `did/pub/<alg>/<purpose>/<encoding>` for a public key,
            `did/svc/<type>` for a service endpoint.
    @param identity The identity address.
    @param name The attribute name, ASCII right-padded to bytes32.
    @param value_ The attribute value (at most 1024 bytes).
    @param validity Seconds from now until the attribute expires.
    """
    self._set_attribute(identity, msg.sender, name, value_, validity)


@external
def setAttributeSigned(
    identity: address,
    sigV: uint8,
    sigR: bytes32,
    sigS: bytes32,
    name: bytes32,
    value_: Bytes[MAX_VALUE_LENGTH],
    validity: uint256,
):
    """
    @dev Message: 0x1900 ‖ this ‖ nonce[owner] ‖ identity ‖ "setAttribute" ‖ name ‖ value ‖
         validity.
    @notice `setAttribute` with the owner's signature, submitted by anyone.
    @param identity The identity address.
    @param sigV The signature's v (27 or 28).
    @param sigR The signature's r.
    @param sigS The signature's s (at most n/2).
    @param name The attribute name, ASCII right-padded to bytes32.
    @param value_ The attribute value (at most 1024 bytes).
    @param validity Seconds from now until the attribute expires.
    """
    digest: bytes32 = self._digest(identity, concat(b"setAttribute", name, value_, convert(validity, bytes32)))
    self._set_attribute(identity, self._check_signature(identity, sigV, sigR, sigS, digest), name, value_, validity)


@external
def revokeAttribute(identity: address, name: bytes32, value_: Bytes[MAX_VALUE_LENGTH]):
    """
    @dev Emits `DIDAttributeChanged` with `validTo = 0`; resolvers drop the attribute with the
         same name and value.
    @notice Revokes the attribute `name` = `value`.
    @param identity The identity address.
    @param name The attribute name, ASCII right-padded to bytes32.
    @param value_ The attribute value being revoked (must equal the published one).
    """
    self._revoke_attribute(identity, msg.sender, name, value_)


@external
def revokeAttributeSigned(
    identity: address, sigV: uint8, sigR: bytes32, sigS: bytes32, name: bytes32, value_: Bytes[MAX_VALUE_LENGTH]
):
    """
    @dev Message: 0x1900 ‖ this ‖ nonce[owner] ‖ identity ‖ "revokeAttribute" ‖ name ‖ value.
    @notice `revokeAttribute` with the owner's signature, submitted by anyone.
    @param identity The identity address.
    @param sigV The signature's v (27 or 28).
    @param sigR The signature's r.
    @param sigS The signature's s (at most n/2).
    @param name The attribute name, ASCII right-padded to bytes32.
    @param value_ The attribute value being revoked.
    """
    digest: bytes32 = self._digest(identity, concat(b"revokeAttribute", name, value_))
    self._revoke_attribute(identity, self._check_signature(identity, sigV, sigR, sigS, digest), name, value_)


@internal
@view
def _identity_owner(identity: address) -> address:
    """
    @dev `owners[identity]`, or `identity` when unset.
    @param identity The identity address.
    @return address The current owner.
    """
    owner: address = self.owners[identity]
    if owner != empty(address):
        return owner
    return identity


@internal
@view
def _digest(identity: address, payload: Bytes[1_100]) -> bytes32:
    """
    @dev keccak256(0x19 ‖ 0x00 ‖ this ‖ nonce[identityOwner(identity)] ‖ identity ‖ payload).
         The payload bound is "setAttribute" (12) + name (32) + value (1024) + validity (32).
    @param identity The identity address.
    @param payload The function name and its packed arguments.
    @return bytes32 The digest the owner signs.
    """
    return keccak256(
        concat(
            _PREFIX,
            convert(self, bytes20),
            convert(self.nonce[self._identity_owner(identity)], bytes32),
            convert(identity, bytes20),
            payload,
        )
    )


@internal
def _check_signature(identity: address, sigV: uint8, sigR: bytes32, sigS: bytes32, digest: bytes32) -> address:
    """
    @dev Rejects what `sig.recover` refuses (v outside {27, 28}, r = 0, s outside [1, n/2], a
         signature that recovers no key: r >= n or an r that is no curve point) and any signer
         other than the owner with "identity: bad signature", then bumps the owner's nonce.
    @param identity The identity address.
    @param sigV The signature's v.
    @param sigR The signature's r.
    @param sigS The signature's s.
    @param digest The signed digest.
    @return address The owner, who signed.
    """
    signer: address = sig.recover(digest, convert(sigV, uint256), convert(sigR, uint256), convert(sigS, uint256))
    assert signer != empty(address), "identity: bad signature"
    assert signer == self._identity_owner(identity), "identity: bad signature"
    self.nonce[signer] += 1
    return signer


@internal
def _only_owner(identity: address, actor: address):
    """
    @dev Reverts "identity: not owner" unless `actor` owns `identity`.
    @param identity The identity address.
    @param actor The caller or the recovered signer.
    """
    assert actor == self._identity_owner(identity), "identity: not owner"


@internal
def _change_owner(identity: address, actor: address, newOwner: address):
    """
    @dev Owner check, write, event, then move the linked-list head to this block.
    @param identity The identity address.
    @param actor The caller or the recovered signer.
    @param newOwner The new owner.
    """
    self._only_owner(identity, actor)
    self.owners[identity] = newOwner
    log IIdentityRegistry.DIDOwnerChanged(identity=identity, owner=newOwner, previousChange=self.changed[identity])
    self.changed[identity] = block.number


@internal
def _valid_to(validity: uint256) -> uint256:
    """
    @dev `block.timestamp + validity`, reverting with a reason instead of overflowing.
    @param validity Seconds from now.
    @return uint256 The expiry timestamp.
    """
    assert validity <= max_value(uint256) - block.timestamp, "identity: validity overflow"
    return block.timestamp + validity


@internal
def _add_delegate(identity: address, actor: address, delegateType: bytes32, delegate: address, validity: uint256):
    """
    @dev Owner check, expiry write, event, linked-list head.
    @param identity The identity address.
    @param actor The caller or the recovered signer.
    @param delegateType The delegate type.
    @param delegate The delegate address.
    @param validity Seconds from now until expiry.
    """
    self._only_owner(identity, actor)
    valid_to: uint256 = self._valid_to(validity)
    self.delegates[identity][keccak256(delegateType)][delegate] = valid_to
    log IIdentityRegistry.DIDDelegateChanged(
        identity=identity,
        delegateType=delegateType,
        delegate=delegate,
        validTo=valid_to,
        previousChange=self.changed[identity],
    )
    self.changed[identity] = block.number


@internal
def _revoke_delegate(identity: address, actor: address, delegateType: bytes32, delegate: address):
    """
    @dev Owner check, expiry set to now (so `validDelegate` is false from this block), event,
         linked-list head.
    @param identity The identity address.
    @param actor The caller or the recovered signer.
    @param delegateType The delegate type.
    @param delegate The delegate address.
    """
    self._only_owner(identity, actor)
    self.delegates[identity][keccak256(delegateType)][delegate] = block.timestamp
    log IIdentityRegistry.DIDDelegateChanged(
        identity=identity,
        delegateType=delegateType,
        delegate=delegate,
        validTo=block.timestamp,
        previousChange=self.changed[identity],
    )
    self.changed[identity] = block.number


@internal
def _set_attribute(
    identity: address, actor: address, name: bytes32, value_: Bytes[MAX_VALUE_LENGTH], validity: uint256
):
    """
    @dev Owner check, event, linked-list head.
    @param identity The identity address.
    @param actor The caller or the recovered signer.
    @param name The attribute name.
    @param value_ The attribute value.
    @param validity Seconds from now until expiry.
    """
    self._only_owner(identity, actor)
    log IIdentityRegistry.DIDAttributeChanged(
        identity=identity,
        name=name,
        value=value_,
        validTo=self._valid_to(validity),
        previousChange=self.changed[identity],
    )
    self.changed[identity] = block.number


@internal
def _revoke_attribute(identity: address, actor: address, name: bytes32, value_: Bytes[MAX_VALUE_LENGTH]):
    """
    @dev Owner check, event with `validTo = 0`, linked-list head.
    @param identity The identity address.
    @param actor The caller or the recovered signer.
    @param name The attribute name.
    @param value_ The attribute value.
    """
    self._only_owner(identity, actor)
    log IIdentityRegistry.DIDAttributeChanged(
        identity=identity, name=name, value=value_, validTo=0, previousChange=self.changed[identity]
    )
    self.changed[identity] = block.number
