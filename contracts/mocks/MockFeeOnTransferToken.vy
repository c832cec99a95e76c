# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockFeeOnTransferToken: burns 1% of every transfer
@custom:contract-name MockFeeOnTransferToken
@license GNU Affero General Public License v3.0 only (compiles in snekmate)
@notice Test token: the receiver gets 99% of the amount sent (the router must reject it).
"""

from ethereum.ercs import IERC20
implements: IERC20

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.approve,
    erc20.allowance,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
)


# @dev Token name.
NAME: constant(String[25]) = "Mock Fee Token"


# @dev Token symbol.
SYMBOL: constant(String[5]) = "FEE"


@deploy
def __init__():
    """
    @dev Deploys the token (18 decimals).
    """
    ownable.__init__()
    erc20.__init__(NAME, SYMBOL, 18, NAME, "1")


@external
def mint(to: address, amount: uint256):
    """
    @dev Mints `amount` to `to` (anyone).
    @param to Receiver.
    @param amount Amount.
    """
    erc20._mint(to, amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Transfers 99% of `amount`, burns 1%.
    @param to Receiver.
    @param amount Amount debited.
    @return bool True.
    """
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Transfers 99% of `amount` from `owner`, burns 1%.
    @param owner Payer.
    @param to Receiver.
    @param amount Amount debited.
    @return bool True.
    """
    erc20._spend_allowance(owner, msg.sender, amount)
    self._move(owner, to, amount)
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    """
    @dev Moves 99%, burns 1% (at least 1 wei when amount > 0).
    @param owner Payer.
    @param to Receiver.
    @param amount Amount debited.
    """
    fee: uint256 = amount // 100
    if fee == 0 and amount != 0:
        fee = 1
    erc20._burn(owner, fee)
    erc20._transfer(owner, to, amount - fee)
