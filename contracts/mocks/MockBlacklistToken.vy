# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockBlacklistToken: transfers to blacklisted addresses revert (USDC-like)
@custom:contract-name MockBlacklistToken
@license GNU Affero General Public License v3.0 only (compiles in snekmate)
@notice Test token: `blacklist(addr, True)` makes every transfer to `addr` revert.
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
NAME: constant(String[25]) = "Mock Blacklist Token"


# @dev Token symbol.
SYMBOL: constant(String[5]) = "BLK"


# @dev Addresses that cannot receive.
blacklisted: public(HashMap[address, bool])


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
def blacklist(account: address, status: bool):
    """
    @dev Sets whether `account` may receive (anyone: test token).
    @param account The account.
    @param status True to block it.
    """
    self.blacklisted[account] = status


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev ERC-20 transfer that reverts for blacklisted receivers.
    @param to Receiver.
    @param amount Amount.
    @return bool True.
    """
    assert not self.blacklisted[to], "blacklist: receiver blocked"
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev ERC-20 transferFrom that reverts for blacklisted receivers.
    @param owner Payer.
    @param to Receiver.
    @param amount Amount.
    @return bool True.
    """
    assert not self.blacklisted[to], "blacklist: receiver blocked"
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True
