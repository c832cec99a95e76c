# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title UsageMeter nodes: operators, earnings, paid usage per epoch
@custom:contract-name meter_nodes
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice What the meter keeps per node: the operators it authorised to settle its vouchers,
        its earnings per token (pulled with `claim_node`) and, per epoch of settlement, one
        slot of the PAID usage settled by the node or its operators (calls 48 | failures 48 |
        latency_ms 56 | mu 52 | failed_mu 52, high to low, each saturating), which
        AccessStaking reads once per node when it finalizes an epoch. The settlement pass
        nets a run of vouchers of one (node, token) and books it with `book`.

        Example (exported by UsageMeter):
            meter.set_operator(relayer, True, sender=node)
            meter.claim_node(usdc, node, sender=node)
            u = meter.node_usage(node, epoch)       # calls, failures, latency_ms_sum, mu, failed_mu
@custom:security `claim_node` zeroes the balance before the transfer (checks-effects-
        interactions) under the deployable's nonreentrancy lock; it works while paused.
"""

from ethereum.ercs import IERC20

from interfaces import IUsageMeter

from . import masks


# @dev Operators a node authorised to settle its vouchers: node => operator => allowed.
operators: public(HashMap[address, HashMap[address, bool]])


# @dev Node earnings: node => token => balance.
node_balance: public(HashMap[address, HashMap[address, uint256]])


# @dev Paid usage per node and epoch of settlement, one packed slot (see the title).
usage: HashMap[address, HashMap[uint256, uint256]]


@external
def set_operator(operator: address, allowed: bool):
    """
    @dev Authorises (or stops) `operator` to settle the caller's (a node's) vouchers.
    @notice Usage counts toward a node's Proof-of-Access score only through settlements by the
            node itself or its operators.
    @param operator The relayer address (non-zero).
    @param allowed Whether it may settle for the caller.
    """
    assert operator != empty(address), "meter: zero operator"
    self.operators[msg.sender][operator] = allowed
    log IUsageMeter.OperatorSet(node=msg.sender, operator=operator, allowed=allowed)


@external
def claim_node(token: address, to: address) -> uint256:
    """
    @dev Sends the caller's (a node's) earnings in `token` to `to`. Works when paused.
    @param token The token.
    @param to The receiver.
    @return uint256 The amount sent.
    """
    amount: uint256 = self.node_balance[msg.sender][token]
    assert amount > 0, "meter: nothing to claim"
    self.node_balance[msg.sender][token] = 0
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "meter: transfer failed"
    log IUsageMeter.NodeClaimed(node=msg.sender, token=token, to=to, amount=amount)
    return amount


@external
@view
def node_usage(node: address, epoch: uint256) -> IUsageMeter.NodeUsage:
    """
    @dev Paid usage the node (or its operators) settled during `epoch` (read by AccessStaking).
    @param node The node.
    @param epoch The epoch number.
    @return NodeUsage (calls, failures, latency_ms_sum, mu, failed_mu).
    """
    p: uint256 = self.usage[node][epoch]
    return IUsageMeter.NodeUsage(
        calls=convert(p >> 208, uint64),
        failures=convert((p >> 160) & masks.MASK48, uint64),
        latency_ms_sum=convert((p >> 104) & masks.MASK56, uint64),
        mu=(p >> 52) & masks.MASK52,
        failed_mu=p & masks.MASK52,
    )


@internal
def book(
    node: address,
    token: address,
    amount: uint256,
    calls: uint256,
    failures: uint256,
    latency_ms: uint256,
    mu: uint256,
    failed_mu: uint256,
    epoch: uint256,
):
    """
    @dev Books a run of one node's earnings in one token and adds its paid usage to the node's
         epoch slot, each field saturating. Effects only.
    @param node The node.
    @param token The token.
    @param amount The node's earnings of the run.
    @param calls The run's settled calls.
    @param failures Its failed calls.
    @param latency_ms Its latency sum.
    @param mu Its MU.
    @param failed_mu Its failed MU.
    @param epoch The current epoch.
    """
    if amount != 0:
        self.node_balance[node][token] += amount
    p: uint256 = self.usage[node][epoch]
    calls_: uint256 = min((p >> 208) + calls, masks.MASK48)
    failures_: uint256 = min(((p >> 160) & masks.MASK48) + failures, masks.MASK48)
    latency_: uint256 = min(((p >> 104) & masks.MASK56) + latency_ms, masks.MASK56)
    mu_: uint256 = min(((p >> 52) & masks.MASK52) + min(mu, masks.MASK52), masks.MASK52)
    failed_: uint256 = min((p & masks.MASK52) + min(failed_mu, masks.MASK52), masks.MASK52)
    self.usage[node][epoch] = (calls_ << 208) | (failures_ << 160) | (latency_ << 104) | (mu_ << 52) | failed_
