# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title GovernanceTimelock: the default admin of a CodexField deployment
@custom:contract-name GovernanceTimelock
@license GNU Affero General Public License v3.0 only (compiles in snekmate, AGPL-3.0-only)
@author CodexField
@notice snekmate's `timelock_controller`, deployable as is. `ape run deploy` deploys one on
        every non-local network when no `--admin` is given and hands it every admin role:
        from then on each governance call (granting a role, allowing a token, changing a fee)
        is scheduled by a proposer, waits at least `get_minimum_delay` seconds in public
        (`CallScheduled`), and is executed by an executor. The timelock administers itself
        (the deployer keeps no role on it); its proposers also hold the canceller role.

        Reentrancy: off on purpose. A timelock changes its own settings (`update_delay`, role
        grants) by executing a call to itself from `execute`, which a global lock would
        refuse; snekmate's `execute` marks the operation done before the call
        (checks-effects-interactions), so a reentrant `execute` of the same operation fails.
@custom:security Trusts its proposers (a multisig) to schedule only what governance decided,
        and the minimum delay to give everyone time to react (leave) before a call runs;
        cancellers (the proposers) can stop a scheduled call. Holds no funds of its own beyond
        what a scheduled call forwards (`execute` is payable).
@custom:kill Nothing to pause: the timelock is the pause's owner, not a subject of it. A
        proposer can `cancel` any pending operation; nothing stops `execute` of a ready one.
"""

from snekmate.auth import access_control

initializes: access_control

from snekmate.governance import timelock_controller

initializes: timelock_controller[access_control := access_control]

exports: timelock_controller.__interface__


@deploy
@payable
def __init__(
    minimum_delay_: uint256,
    proposers_: DynArray[address, 255],
    executors_: DynArray[address, 255],
    admin_: address,
):
    """
    @dev Sets the minimum delay, grants PROPOSER and CANCELLER to `proposers_`, EXECUTOR to
         `executors_` (`empty(address)` in it: anyone may execute a ready operation) and the
         optional bootstrap admin (`empty(address)`: none; the timelock alone administers
         itself). The deployer gets no role.
    @param minimum_delay_ Minimum delay in seconds of every scheduled operation.
    @param proposers_ Accounts that may schedule and cancel operations (a multisig).
    @param executors_ Accounts that may execute ready operations.
    @param admin_ Optional extra admin of the timelock itself (`empty(address)` for none).
    """
    access_control.__init__()
    timelock_controller.__init__(minimum_delay_, proposers_, executors_, admin_)
