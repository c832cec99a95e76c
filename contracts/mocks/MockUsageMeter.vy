# pragma version 0.4.3
# pragma nonreentrancy off
"""
@title MockUsageMeter: a settable UsageMeter for AccessStaking tests
@custom:contract-name MockUsageMeter
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Answers `node_usage(node, epoch)` with whatever `set_node_usage` stored, and the
        `epoch_length`/`genesis` it was deployed with. Test-only: anyone may set usage.
"""

from interfaces import IUsageMeter

# Only the part AccessStaking reads (`node_usage`, `epoch_length`, `genesis`), so it does not
# `implements: IUsageMeter` (the full meter surface).


# @dev Seconds per epoch.
epoch_length: public(uint256)


# @dev Start of epoch 0.
genesis: public(uint256)


# @dev Stored usage per node and epoch, packed in one slot (calls 64 | failures 64 | latency 64 | mu 64)
#      like a production meter would keep it, so that gas measurements stay realistic.
_usage: HashMap[address, HashMap[uint256, uint256]]


@deploy
def __init__(epoch_length_: uint256, genesis_: uint256):
    """
    @dev Deploys the mock.
    @param epoch_length_ Seconds per epoch.
    @param genesis_ Start of epoch 0.
    """
    self.epoch_length = epoch_length_
    self.genesis = genesis_


@external
def set_node_usage(node: address, epoch: uint256, calls: uint64, failures: uint64, latency_ms_sum: uint64, mu: uint256):
    """
    @dev Stores the usage of `node` in `epoch` (anyone).
    @param node The node.
    @param epoch The epoch.
    @param calls Paid calls.
    @param failures Failed paid calls.
    @param latency_ms_sum Sum of the calls' latencies in ms.
    @param mu Metered units served (< 2**64 in this mock).
    """
    assert mu < 2**64, "mock: mu too large"
    self._usage[node][epoch] = (
        convert(calls, uint256)
        | (convert(failures, uint256) << 64)
        | (convert(latency_ms_sum, uint256) << 128)
        | (mu << 192)
    )


@external
@view
def node_usage(node: address, epoch: uint256) -> IUsageMeter.NodeUsage:
    """
    @dev The stored usage of `node` in `epoch`.
    @param node The node.
    @param epoch The epoch.
    @return NodeUsage (calls, failures, latency_ms_sum, mu, failed_mu = mu * failures // calls).
    """
    w: uint256 = self._usage[node][epoch]
    calls: uint256 = w & (2**64 - 1)
    failures: uint256 = (w >> 64) & (2**64 - 1)
    mu: uint256 = w >> 192
    failed_mu: uint256 = 0
    if calls != 0:
        failed_mu = mu * failures // calls
    return IUsageMeter.NodeUsage(
        calls=convert(calls, uint64),
        failures=convert(failures, uint64),
        latency_ms_sum=convert((w >> 128) & (2**64 - 1), uint64),
        mu=mu,
        failed_mu=failed_mu,
    )
