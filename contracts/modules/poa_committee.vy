# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Proof of Access reporter committee
@custom:contract-name poa_committee
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns the reporter committee of AccessStaking: at most MAX_COMMITTEE seats, each a
        member with the first epoch it sits in and the first epoch it no longer sits in, and
        the checkpoints of the committee's size per epoch. The admin seeds it at deploy
        (sitting from epoch 0) and changes it with `add_reporter` / `remove_reporter`; a change
        made during epoch c takes effect from epoch c + 1, so an epoch's committee is fixed
        before the epoch starts. A slot is reused only once every epoch its previous member sat
        in is past reporting. AccessStaking's `submit_reports` reads a member's seat (one
        report slot per member and (epoch, node)); `finalize_epoch` reads `_size_at(epoch)`.

        Example (exported by AccessStaking):
            staking.add_reporter(r, sender=admin)        # sits from the next epoch
            staking.is_reporter(r, staking.current_epoch() + 1)   # True
@custom:security The DEFAULT_ADMIN of snekmate's `access_control` (meant to be a timelock) is
        the only writer. A removed member keeps reporting for the epochs it sat in until their
        windows close, so no report already owed is lost.
"""

from interfaces import IAccessStaking

from snekmate.auth import access_control

uses: access_control

from . import poa_epochs

uses: poa_epochs

from . import poa_score
from . import masks


# @dev "Never ends" value of a seat's `until` epoch.
OPEN: constant(uint256) = 2**48 - 1


# @dev Committee seat per slot: member 160 | first epoch it sits 48 @160 | first epoch it no
#      longer sits 48 @208 (OPEN: still a member). Zero: free slot.
_seat: HashMap[uint256, uint256]


# @dev Slot + 1 of an address's latest seat (0: none).
_slot_of: HashMap[address, uint256]


# @dev Committee size checkpoints: index -> from epoch 248 @8 | size 8; and their count. The size
#      of epoch e is the size of the last checkpoint whose from epoch is <= e.
_size_cp: HashMap[uint256, uint256]
_size_cp_count: uint256


@external
def add_reporter(reporter: address):
    """
    @dev Adds `reporter` to the committee from the next epoch on (admin).
    @notice Takes the lowest free slot: one never used, or one whose previous member's last
            epoch is past reporting. A removed member can be added again once its old seat is
            free ("poa: reporter still reporting" until then).
    @param reporter The new member (not already sitting or about to sit).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert reporter != empty(address), "poa: zero reporter"
    c: uint256 = poa_epochs._current_epoch()
    held: uint256 = self._slot_of[reporter]
    if held != 0:
        # A former member comes back only once its old seat is free (its old slot may be reused).
        seat: uint256 = self._seat[held - 1]
        assert seat >> 208 != OPEN, "poa: already a reporter"
        assert self._seat_free(seat), "poa: reporter still reporting"
        self._slot_of[reporter] = 0
    slot: uint256 = poa_score.MAX_COMMITTEE
    for i: uint256 in range(poa_score.MAX_COMMITTEE):
        seat: uint256 = self._seat[i]
        if seat == 0 or self._seat_free(seat):
            slot = i
            if seat != 0:
                old: address = convert(convert(seat & masks.MASK160, uint160), address)
                if self._slot_of[old] == i + 1:
                    self._slot_of[old] = 0
            break
    assert slot < poa_score.MAX_COMMITTEE, "poa: committee full"
    self._seat[slot] = convert(convert(reporter, uint160), uint256) | ((c + 1) << 160) | (OPEN << 208)
    self._slot_of[reporter] = slot + 1
    self._resize(c + 1, True)
    log IAccessStaking.ReporterAdded(reporter=reporter, slot=slot, from_epoch=c + 1)


@external
def remove_reporter(reporter: address):
    """
    @dev Removes `reporter` from the committee from the next epoch on (admin). It still reports
         for the epochs it sat in until their report windows close; its slot is then free.
    @param reporter A member sitting (or about to sit) in the next epoch.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    held: uint256 = self._slot_of[reporter]
    assert held != 0, "poa: not a reporter"
    seat: uint256 = self._seat[held - 1]
    assert seat >> 208 == OPEN, "poa: not a reporter"
    c: uint256 = poa_epochs._current_epoch()
    if (seat >> 160) & masks.MASK48 >= c + 1:
        # Added this epoch, never sat: the slot is free at once.
        self._seat[held - 1] = 0
        self._slot_of[reporter] = 0
    else:
        self._seat[held - 1] = (seat & ((1 << 208) - 1)) | ((c + 1) << 208)
    self._resize(c + 1, False)
    log IAccessStaking.ReporterRemoved(reporter=reporter, slot=held - 1, until_epoch=c + 1)


@external
@view
def committee_size(epoch: uint256) -> uint256:
    """
    @dev The number of reporters sitting in `epoch` (a node's epoch counts with more than half).
    @param epoch The epoch.
    @return uint256 The committee size.
    """
    return self._size_at(epoch)


@external
@view
def reporter_seat(slot: uint256) -> (address, uint256, uint256):
    """
    @dev The seat in committee slot `slot` < MAX_COMMITTEE (zero address: free).
    @param slot The slot.
    @return address The member.
    @return uint256 The first epoch it sits in.
    @return uint256 The first epoch it no longer sits in (2**48 - 1: open-ended).
    """
    seat: uint256 = self._seat[slot]
    return convert(convert(seat & masks.MASK160, uint160), address), (seat >> 160) & masks.MASK48, seat >> 208


@external
@view
def is_reporter(reporter: address, epoch: uint256) -> bool:
    """
    @dev True when `reporter` sits in `epoch`'s committee (may report for it).
    @param reporter The address.
    @param epoch The epoch.
    @return bool Whether it sits.
    """
    held: uint256 = self._slot_of[reporter]
    if held == 0:
        return False
    seat: uint256 = self._seat[held - 1]
    return (seat >> 160) & masks.MASK48 <= epoch and epoch < seat >> 208


@internal
def _seat_initial(reporters: DynArray[address, poa_score.MAX_COMMITTEE]):
    """
    @dev Seats the deploy-time committee in slots 0.. (sitting from epoch 0).
    @param reporters Distinct, non-zero members.
    """
    slot: uint256 = 0
    for r: address in reporters:
        assert r != empty(address), "poa: zero reporter"
        assert self._slot_of[r] == 0, "poa: already a reporter"
        self._seat[slot] = convert(convert(r, uint160), uint256) | (OPEN << 208)
        self._slot_of[r] = slot + 1
        log IAccessStaking.ReporterAdded(reporter=r, slot=slot, from_epoch=0)
        slot += 1
    if slot != 0:
        self._size_cp[0] = slot
        self._size_cp_count = 1


@internal
@view
def _seat_free(seat: uint256) -> bool:
    """
    @dev True when a closed seat's slot may be reused: its member never sat, or the report
         window of the last epoch it sat in has closed.
    @param seat The seat word.
    @return bool Whether the slot is free.
    """
    until: uint256 = seat >> 208
    if until == OPEN:
        return False
    if (seat >> 160) & masks.MASK48 >= until:
        return True
    return block.timestamp >= poa_epochs.genesis + until * poa_epochs.epoch_length + poa_epochs.report_window


@internal
def _resize(from_epoch: uint256, grow: bool):
    """
    @dev Records a committee size change effective from `from_epoch` (the next epoch).
    @param from_epoch The first epoch of the new size.
    @param grow True: one more member; False: one fewer.
    """
    n: uint256 = self._size_cp_count
    size: uint256 = 0
    last: uint256 = 0
    if n != 0:
        last = self._size_cp[n - 1]
        size = last & 255
    if grow:
        size += 1
    else:
        size -= 1
    if n != 0 and last >> 8 == from_epoch:
        self._size_cp[n - 1] = (from_epoch << 8) | size
    else:
        self._size_cp[n] = (from_epoch << 8) | size
        self._size_cp_count = n + 1


@internal
@view
def _size_at(epoch: uint256) -> uint256:
    """
    @dev The committee size of `epoch`: the last checkpoint at or before it (binary search).
    @param epoch The epoch.
    @return uint256 The size.
    """
    lo: uint256 = 0
    hi: uint256 = self._size_cp_count
    for i: uint256 in range(64):
        if lo >= hi:
            break
        mid: uint256 = (lo + hi) // 2
        if self._size_cp[mid] >> 8 <= epoch:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return 0
    return self._size_cp[lo - 1] & 255
