# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Lean ERC-721 (non-enumerable) for CodexField capsules and credentials
@custom:contract-name erc721_lean
@license GNU Affero General Public License v3.0 only
@author CodexField (structure and checks follow snekmate's `tokens/erc721.vy`)
@notice snekmate 0.1.2's `erc721` module always keeps the ERC-721 enumeration extension,
        which costs four extra cold storage writes (~85k gas) on every mint and two on every
        transfer. CodexField mints a capsule and a credential on its hottest paths, and the
        indexer rebuilds ownership from `Transfer` events, so this module keeps the core
        ERC-721 state and checks only. The importing contract owns `supportsInterface`,
        `tokenURI` and, when it needs transfer hooks (ERC-5192 locks), its own external
        `transferFrom` / `safeTransferFrom` built on `_transfer_checked`.
        Export `balanceOf`, `ownerOf`, `getApproved`, `isApprovedForAll`, `approve`,
        `setApprovalForAll` (and `transferFrom`, `safeTransferFrom` when no hook is needed).
@custom:security `safeTransferFrom` calls the receiver after all state is written (CEI);
        contracts that export it set `# pragma nonreentrancy on`.
"""

from ethereum.ercs import IERC721
from snekmate.tokens.interfaces import IERC721Receiver


# @dev Token collection name.
name: public(String[32])


# @dev Token collection symbol.
symbol: public(String[8])


# @dev Operator approvals: owner => operator => approved.
isApprovedForAll: public(HashMap[address, HashMap[address, bool]])


# @dev Token count per owner.
_balances: HashMap[address, uint256]


# @dev Owner per token, packed: low 160 bits the owner, high 96 bits `aux` data that the
#      importing contract owns (it survives transfers), so that a token's owner and its
#      hottest metadata share one storage slot.
_owners: HashMap[uint256, uint256]


# @dev Mask of the owner bits in `_owners`.
_OWNER_MASK: constant(uint256) = 2**160 - 1


# @dev Single-token approvals.
_token_approvals: HashMap[uint256, address]


@deploy
def __init__(name_: String[32], symbol_: String[8]):
    """
    @dev Sets the collection name and symbol.
    @param name_ The collection name.
    @param symbol_ The collection symbol.
    """
    self.name = name_
    self.symbol = symbol_


@external
@view
def balanceOf(owner: address) -> uint256:
    """
    @dev Returns the number of tokens `owner` holds.
    @param owner The 20-byte owner address (non-zero).
    @return uint256 The token count.
    """
    assert owner != empty(address), "erc721: invalid owner"
    return self._balances[owner]


@external
@view
def ownerOf(token_id: uint256) -> address:
    """
    @dev Returns the owner of `token_id`; reverts if it does not exist.
    @param token_id The 32-byte token identifier.
    @return address The owner.
    """
    owner: address = self._owner_of(token_id)
    assert owner != empty(address), "erc721: invalid token ID"
    return owner


@external
@view
def getApproved(token_id: uint256) -> address:
    """
    @dev Returns the account approved for `token_id`.
    @param token_id The 32-byte token identifier.
    @return address The approved account (zero if none).
    """
    assert self._owner_of(token_id) != empty(address), "erc721: invalid token ID"
    return self._token_approvals[token_id]


@external
@payable
def approve(to: address, token_id: uint256):
    """
    @dev Approves `to` to transfer `token_id`.
    @param to The 20-byte approved address.
    @param token_id The 32-byte token identifier.
    """
    owner: address = self._owner_of(token_id)
    assert owner != empty(address), "erc721: invalid token ID"
    assert to != owner, "erc721: approval to current owner"
    assert (
        msg.sender == owner or self.isApprovedForAll[owner][msg.sender]
    ), "erc721: approve caller is not token owner or approved for all"
    self._token_approvals[token_id] = to
    log IERC721.Approval(owner=owner, approved=to, token_id=token_id)


@external
def setApprovalForAll(operator: address, approved: bool):
    """
    @dev Lets `operator` manage all of the caller's tokens.
    @param operator The 20-byte operator address.
    @param approved Whether the operator is approved.
    """
    assert operator != msg.sender, "erc721: approve to caller"
    self.isApprovedForAll[msg.sender][operator] = approved
    log IERC721.ApprovalForAll(owner=msg.sender, operator=operator, approved=approved)


@external
@payable
def transferFrom(owner: address, to: address, token_id: uint256):
    """
    @dev Transfers `token_id` from `owner` to `to` (caller must be owner or approved).
    @param owner The 20-byte current owner.
    @param to The 20-byte receiver.
    @param token_id The 32-byte token identifier.
    """
    self._transfer_checked(msg.sender, owner, to, token_id)


@external
@payable
def safeTransferFrom(owner: address, to: address, token_id: uint256, data: Bytes[1_024] = b""):
    """
    @dev Transfers `token_id` and checks that a contract receiver accepts ERC-721 tokens.
    @param owner The 20-byte current owner.
    @param to The 20-byte receiver.
    @param token_id The 32-byte token identifier.
    @param data Data passed to `onERC721Received`.
    """
    self._transfer_checked(msg.sender, owner, to, token_id)
    self._check_on_erc721_received(owner, to, token_id, data)


@internal
@view
def _owner_of(token_id: uint256) -> address:
    """
    @dev Owner of `token_id`, zero if it does not exist.
    @param token_id The 32-byte token identifier.
    @return address The owner or zero.
    """
    return convert(convert(self._owners[token_id] & _OWNER_MASK, uint160), address)


@internal
@view
def _aux(token_id: uint256) -> uint256:
    """
    @dev The 96-bit auxiliary data stored beside the owner of `token_id`.
    @param token_id The 32-byte token identifier.
    @return uint256 The aux data (< 2**96).
    """
    return self._owners[token_id] >> 160


@internal
@view
def _owner_and_aux(token_id: uint256) -> (address, uint256):
    """
    @dev Owner and aux data of `token_id` in one storage read.
    @param token_id The 32-byte token identifier.
    @return address The owner (zero if none).
    @return uint256 The aux data.
    """
    packed: uint256 = self._owners[token_id]
    return convert(convert(packed & _OWNER_MASK, uint160), address), packed >> 160


@internal
def _set_aux(token_id: uint256, aux: uint256):
    """
    @dev Replaces the aux data of an existing `token_id`.
    @param token_id The 32-byte token identifier.
    @param aux The new aux data (< 2**96).
    """
    assert aux < 2**96, "erc721: aux overflow"
    self._owners[token_id] = (self._owners[token_id] & _OWNER_MASK) | (aux << 160)


@internal
@view
def _is_approved_or_owner(spender: address, owner: address, token_id: uint256) -> bool:
    """
    @dev Whether `spender` may move `token_id` owned by `owner`.
    @param spender The 20-byte spender.
    @param owner The 20-byte owner of the token.
    @param token_id The 32-byte token identifier.
    @return bool True if allowed.
    """
    return spender == owner or self.isApprovedForAll[owner][spender] or self._token_approvals[token_id] == spender


@internal
def _mint(owner: address, token_id: uint256, aux: uint256):
    """
    @dev Mints `token_id` to `owner` with `aux` data (no receiver callback: CodexField
         mints to the caller or to a holder the caller names).
    @param owner The 20-byte receiver (non-zero).
    @param token_id The 32-byte token identifier (must not exist).
    @param aux The 96-bit aux data kept beside the owner.
    """
    assert owner != empty(address), "erc721: mint to the zero address"
    assert self._owners[token_id] == 0, "erc721: token already minted"
    assert aux < 2**96, "erc721: aux overflow"
    self._balances[owner] = unsafe_add(self._balances[owner], 1)
    self._owners[token_id] = convert(owner, uint256) | (aux << 160)
    log IERC721.Transfer(sender=empty(address), receiver=owner, token_id=token_id)


@internal
def _transfer_checked(spender: address, owner: address, to: address, token_id: uint256):
    """
    @dev Checks `spender`'s right and moves `token_id` from `owner` to `to`.
    @param spender The 20-byte caller.
    @param owner The 20-byte current owner.
    @param to The 20-byte receiver (non-zero).
    @param token_id The 32-byte token identifier.
    """
    packed: uint256 = self._owners[token_id]
    current: address = convert(convert(packed & _OWNER_MASK, uint160), address)
    assert current != empty(address), "erc721: invalid token ID"
    assert current == owner, "erc721: transfer from incorrect owner"
    assert to != empty(address), "erc721: transfer to the zero address"
    assert self._is_approved_or_owner(spender, owner, token_id), "erc721: caller is not token owner or approved"
    if self._token_approvals[token_id] != empty(address):
        self._token_approvals[token_id] = empty(address)
    self._balances[owner] = unsafe_sub(self._balances[owner], 1)
    self._balances[to] = unsafe_add(self._balances[to], 1)
    self._owners[token_id] = (packed & ~_OWNER_MASK) | convert(to, uint256)
    log IERC721.Transfer(sender=owner, receiver=to, token_id=token_id)


@internal
def _check_on_erc721_received(owner: address, to: address, token_id: uint256, data: Bytes[1_024]):
    """
    @dev Calls `onERC721Received` on a contract receiver and checks the magic value.
    @param owner The 20-byte previous owner.
    @param to The 20-byte receiver.
    @param token_id The 32-byte token identifier.
    @param data Data forwarded to the receiver.
    """
    if to.is_contract:
        ret: bytes4 = extcall IERC721Receiver(to).onERC721Received(msg.sender, owner, token_id, data)
        assert ret == method_id(
            "onERC721Received(address,address,uint256,bytes)", output_type=bytes4
        ), "erc721: transfer to non-IERC721Receiver implementer"
