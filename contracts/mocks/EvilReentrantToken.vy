# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title EvilReentrantToken: an ERC-20 that calls back into a target during transfers
@custom:contract-name EvilReentrantToken
@license GNU Affero General Public License v3.0 only (compiles in snekmate)
@notice Adversarial test token: once armed with `arm(target, calldata)`, every `transfer`
        and `transferFrom` first makes the raw call `calldata` to `target` (not
        reverting if it fails) and records whether it succeeded.
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
NAME: constant(String[25]) = "Evil Reentrant Token"


# @dev Token symbol.
SYMBOL: constant(String[5]) = "EVIL"


# @dev Contract to call back into (zero: disarmed).
target: public(address)


# @dev Calldata of the callback.
payload: public(Bytes[292])


# @dev Number of callbacks attempted.
attempts: public(uint256)


# @dev Number of callbacks that succeeded (a re-entrancy hole if non-zero).
successes: public(uint256)


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
def arm(target_: address, payload_: Bytes[292]):
    """
    @dev Arms the callback (zero target disarms).
    @param target_ The contract to re-enter.
    @param payload_ The calldata to send it.
    """
    self.target = target_
    self.payload = payload_


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Re-enters, then transfers.
    @param to Receiver.
    @param amount Amount.
    @return bool True.
    """
    self._reenter()
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Re-enters, then transfers from `owner`.
    @param owner Payer.
    @param to Receiver.
    @param amount Amount.
    @return bool True.
    """
    self._reenter()
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True


@internal
def _reenter():
    """
    @dev Calls `target` with `payload` if armed and records the outcome.
    """
    t: address = self.target
    if t == empty(address):
        return
    self.attempts += 1
    ok: bool = False
    out: Bytes[32] = b""
    ok, out = raw_call(t, self.payload, max_outsize=32, revert_on_failure=False)
    if ok:
        self.successes += 1
