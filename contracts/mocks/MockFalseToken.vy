# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockFalseToken: an ERC-20 whose transfers can return false instead of reverting
@custom:contract-name MockFalseToken
@license GNU Affero General Public License v3.0 only (compiles in snekmate)
@notice Test token: after `refuse(True)`, `transfer` and `transferFrom` move nothing and return
        False (the non-reverting failure some older tokens report), so callers' "transfer
        failed" reason strings can be tested.
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
NAME: constant(String[25]) = "Mock False Token"


# @dev Token symbol.
SYMBOL: constant(String[5]) = "FLS"


# @dev Whether transfers currently return False.
refusing: public(bool)


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
def refuse(status: bool):
    """
    @dev Sets whether transfers return False (anyone: test token).
    @param status True to make them fail softly.
    """
    self.refusing = status


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev ERC-20 transfer, or False without moving anything while refusing.
    @param to Receiver.
    @param amount Amount.
    @return bool Whether it moved.
    """
    if self.refusing:
        return False
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev ERC-20 transferFrom, or False without moving anything while refusing.
    @param owner Payer.
    @param to Receiver.
    @param amount Amount.
    @return bool Whether it moved.
    """
    if self.refusing:
        return False
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True
