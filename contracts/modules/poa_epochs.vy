# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Proof of Access epochs: the clock and the finalization cursor
@custom:contract-name poa_epochs
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns the epoch clock of AccessStaking (epoch e covers [genesis + e * epoch_length,
        genesis + (e + 1) * epoch_length); reports for e are accepted until `report_window`
        seconds after its end) and the finalization cursor (`next_epoch`: every earlier epoch
        is final; `finalize_cursor`: the next node to score in it). Initialized by the
        AccessStaking deployable, used (`uses: poa_epochs`) by the committee, stake ledger and
        reward modules.

        Example (in a module that `uses: poa_epochs`):
            epoch: uint256 = poa_epochs._current_epoch()
            assert poa_epochs.next_epoch >= poa_epochs._epoch_at(thaw_end), "poa: epochs not finalized"
@custom:security Holds no funds and makes no external call. `next_epoch` only grows (the
        deployable's `finalize_epoch` moves it by one per finalized epoch).
"""


# @dev Timestamp at which epoch 0 starts.
genesis: public(immutable(uint256))


# @dev Seconds per epoch.
epoch_length: public(immutable(uint256))


# @dev Seconds after an epoch's end during which its committee may still report.
report_window: immutable(uint256)


# @dev Next epoch to finalize (every earlier epoch is final).
next_epoch: public(uint256)


# @dev Index of the next node to score in `next_epoch` (pagination cursor).
finalize_cursor: public(uint256)


@deploy
def __init__(genesis_: uint256, epoch_length_: uint256, report_window_: uint256):
    """
    @dev Sets the clock (the deployable checked the values).
    @param genesis_ Start of epoch 0.
    @param epoch_length_ Seconds per epoch (non-zero).
    @param report_window_ Seconds of reporting after an epoch's end.
    """
    genesis = genesis_
    epoch_length = epoch_length_
    report_window = report_window_


@external
@view
def current_epoch() -> uint256:
    """
    @dev The epoch containing the current block.
    @return uint256 (now - genesis) // epoch_length.
    """
    return self._current_epoch()


@internal
@view
def _current_epoch() -> uint256:
    """
    @dev The epoch containing the current block.
    @return uint256 The epoch.
    """
    return (block.timestamp - genesis) // epoch_length


@internal
@view
def _epoch_at(ts: uint256) -> uint256:
    """
    @dev The epoch containing timestamp `ts` (>= genesis).
    @param ts A timestamp.
    @return uint256 The epoch.
    """
    return (ts - genesis) // epoch_length
