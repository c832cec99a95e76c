# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockFeeOnTransferToken: an ERC-20 that burns a fee on every transfer
@custom:contract-name MockFeeOnTransferToken
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Adversarial test token: the receiver gets `amount - amount * fee_bps / 10_000`.
        Anyone may mint. Test only.
"""

from ethereum.ercs import IERC20

implements: IERC20


# @dev Token name.
name: public(String[32])


# @dev Token symbol.
symbol: public(String[8])


# @dev Token decimals.
decimals: public(uint8)


# @dev Fee burned on every transfer, in basis points.
fee_bps: public(uint256)


# @dev Total supply.
totalSupply: public(uint256)


# @dev Balances.
balanceOf: public(HashMap[address, uint256])


# @dev Allowances.
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(fee_bps_: uint256):
    """
    @dev Deploys the token.
    @param fee_bps_ The transfer fee in basis points (at most 10,000).
    """
    assert fee_bps_ <= 10_000
    self.name = "Fee On Transfer"
    self.symbol = "FOT"
    self.decimals = 18
    self.fee_bps = fee_bps_


@external
def mint(to: address, amount: uint256):
    """
    @dev Mints `amount` to `to` (anyone).
    @param to Receiver.
    @param amount Amount.
    """
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @dev Sets the allowance of `spender`.
    @param spender Spender.
    @param amount Amount.
    @return bool True.
    """
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Transfers `amount` minus the fee.
    @param to Receiver.
    @param amount Amount.
    @return bool True.
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Transfers `amount` minus the fee from `owner` (allowance spent in full).
    @param owner Payer.
    @param to Receiver.
    @param amount Amount.
    @return bool True.
    """
    self.allowance[owner][msg.sender] -= amount
    self._transfer(owner, to, amount)
    return True


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Moves `amount` out of `owner`, credits `to` with it less the burned fee.
    @param owner Payer.
    @param to Receiver.
    @param amount Amount.
    """
    fee: uint256 = amount * self.fee_bps // 10_000
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - fee
    self.totalSupply -= fee
    log IERC20.Transfer(sender=owner, receiver=to, value=amount - fee)
