# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockERC20: a test token with open minting
@custom:contract-name MockERC20
@license GNU Affero General Public License v3.0 only (compiles in snekmate)
@notice Test and demo token (USDC-like). Anyone may mint: never deploy it on a public chain
        for value.
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
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.allowance,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
)


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    """
    @dev Deploys the token.
    @param name_ Token name.
    @param symbol_ Token symbol.
    @param decimals_ Token decimals.
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")


@external
def mint(to: address, amount: uint256):
    """
    @dev Mints `amount` to `to` (anyone).
    @param to Receiver.
    @param amount Amount.
    """
    erc20._mint(to, amount)
