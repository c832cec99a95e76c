# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title UsageMeter consumer escrow: deposits, thawing withdrawals
@custom:contract-name meter_escrow
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns every consumer's escrow per token and its pending withdrawal. A deposit credits a
        beneficiary (fee-on-transfer tokens refused; the only thing a pause stops); a
        withdrawal is requested, thaws for `withdrawal_thaw` and then leaves. Thawing escrow
        stays chargeable by vouchers until it leaves, and since the thaw is longer than the
        meter's settlement window, every voucher signed before the request can still be
        settled. The UsageMeter debits the escrow voucher by voucher (`escrow` is read and
        written by its settlement pass directly).

        Example (exported by UsageMeter):
            meter.deposit(usdc, 10**6, consumer, sender=funder)
            meter.request_withdrawal(usdc, 10**6, sender=consumer)    # thaws
            meter.withdraw(usdc, consumer, sender=consumer)           # after `withdrawal_thaw`
@custom:security Pulls with the exact-amount check before crediting (`erc20_exact`) and pays
        out after its state writes (checks-effects-interactions); the deployable's
        nonreentrancy lock covers these functions. Withdrawals work while paused.
"""

from ethereum.ercs import IERC20

from interfaces import IUsageMeter

from snekmate.utils import pausable

uses: pausable

from . import erc20_exact


# @dev Seconds a requested escrow withdrawal thaws before it can leave.
withdrawal_thaw: public(immutable(uint256))


# @dev Escrow: consumer => token => balance.
escrow: public(HashMap[address, HashMap[address, uint256]])


# @dev Pending withdrawal: consumer => token => request.
withdrawals: public(HashMap[address, HashMap[address, IUsageMeter.Withdrawal]])


@deploy
def __init__(withdrawal_thaw_: uint256):
    """
    @dev Sets the thaw (the deployable checks it is longer than its settlement window).
    @param withdrawal_thaw_ Thawing period of escrow withdrawals.
    """
    withdrawal_thaw = withdrawal_thaw_


@external
def deposit(token: address, amount: uint256, beneficiary: address):
    """
    @dev Funds `beneficiary`'s escrow with `amount` of `token` pulled from the caller (the only
         thing a pause stops).
    @notice Fee-on-transfer tokens are refused (the received amount must equal `amount`).
    @param token The ERC-20 token.
    @param amount The amount (non-zero).
    @param beneficiary The consumer credited.
    """
    assert not pausable.paused, "meter: paused"
    assert amount > 0, "meter: zero amount"
    assert beneficiary != empty(address), "meter: zero beneficiary"
    ok: bool = False
    received: uint256 = 0
    balance: uint256 = 0
    ok, received, balance = erc20_exact.transfer_from(token, msg.sender, self, amount)
    assert ok, "meter: transfer failed"
    assert received == amount, "meter: fee-on-transfer token"
    self.escrow[beneficiary][token] += amount
    log IUsageMeter.Deposited(beneficiary=beneficiary, token=token, amount=amount, payer=msg.sender)


@external
def request_withdrawal(token: address, amount: uint256):
    """
    @dev Starts the thaw of `amount` of the caller's escrow (replaces a pending request; 0 cancels).
    @notice Thawing escrow stays chargeable by vouchers until it leaves; the thaw is longer than
            the settlement window, so every voucher signed before the request can still be settled.
    @param token The token.
    @param amount The amount to withdraw after the thaw.
    """
    assert amount <= self.escrow[msg.sender][token], "meter: amount above escrow"
    ready_at: uint256 = 0
    if amount > 0:
        ready_at = block.timestamp + withdrawal_thaw
    self.withdrawals[msg.sender][token] = IUsageMeter.Withdrawal(amount=amount, ready_at=ready_at)
    log IUsageMeter.WithdrawalRequested(consumer=msg.sender, token=token, amount=amount, ready_at=ready_at)


@external
def withdraw(token: address, to: address) -> uint256:
    """
    @dev Sends the caller's thawed withdrawal (capped by what is left in escrow) to `to`. Works
         when paused.
    @notice `to` lets a consumer whose own address the token blocks (a blacklisting token) still
            take its escrow out.
    @param token The token.
    @param to The receiver (non-zero).
    @return uint256 The amount sent.
    """
    assert to != empty(address), "meter: zero receiver"
    w: IUsageMeter.Withdrawal = self.withdrawals[msg.sender][token]
    assert w.amount > 0, "meter: no withdrawal requested"
    assert block.timestamp >= w.ready_at, "meter: still thawing"
    amount: uint256 = min(w.amount, self.escrow[msg.sender][token])
    self.withdrawals[msg.sender][token] = empty(IUsageMeter.Withdrawal)
    self.escrow[msg.sender][token] -= amount
    if amount > 0:
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "meter: transfer failed"
    log IUsageMeter.Withdrawn(consumer=msg.sender, token=token, amount=amount, to=to)
    return amount
