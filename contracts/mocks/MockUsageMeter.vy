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


# @dev Stored usage per node and epoch, packed in one slot (calls 32 | failures 32 @32 | latency
#      64 @64 | mu 64 @128 | failed_mu 64 @192) like a production meter would keep it, so that gas
#      measurements stay realistic.
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
def set_node_usage(
    node: address,
    epoch: uint256,
    calls: uint64,
    failures: uint64,
    latency_ms_sum: uint64,
    mu: uint256,
    failed_mu: uint256,
):
    """
    @dev Stores the usage of `node` in `epoch` (anyone).
    @param node The node.
    @param epoch The epoch.
    @param calls Paid calls (< 2**32 in this mock).
    @param failures Failed paid calls (< 2**32 in this mock).
    @param latency_ms_sum Sum of the calls' latencies in ms.
    @param mu Paid MU settled (< 2**64 in this mock).
    @param failed_mu MU of failed paid calls (< 2**64 in this mock).
    """
    assert calls < 2**32 and failures < 2**32, "mock: calls too large"
    assert mu < 2**64 and failed_mu < 2**64, "mock: mu too large"
    self._usage[node][epoch] = (
        convert(calls, uint256)
        | (convert(failures, uint256) << 32)
        | (convert(latency_ms_sum, uint256) << 64)
        | (mu << 128)
        | (failed_mu << 192)
    )


@external
@view
def node_usage(node: address, epoch: uint256) -> IUsageMeter.NodeUsage:
    """
    @dev The stored usage of `node` in `epoch`.
    @param node The node.
    @param epoch The epoch.
    @return NodeUsage (calls, failures, latency_ms_sum, mu, failed_mu).
    """
    w: uint256 = self._usage[node][epoch]
    return IUsageMeter.NodeUsage(
        calls=convert(w & (2**32 - 1), uint64),
        failures=convert((w >> 32) & (2**32 - 1), uint64),
        latency_ms_sum=convert((w >> 64) & (2**64 - 1), uint64),
        mu=(w >> 128) & (2**64 - 1),
        failed_mu=w >> 192,
    )
