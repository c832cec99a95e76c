# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title UsageMeter channels: the cumulative counters settled per (credential, node, payer)
@custom:contract-name meter_channels
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice A channel is what one payer's vouchers to one node for one credential accumulate:
        the latest settled cumulative MU, calls, failures and latency, and the `issued_at` of
        the voucher that set them, in one slot (mu 80 | calls 48 | failures 40 | latency_ms
        48 | issued_at 40, high to low). A voucher pays the delta over them, so a replay or an
        older voucher pays nothing. The field layout is declared here once (`*_AT` offsets):
        the UsageMeter's settlement pass reads and writes the word in place with them.

        Example (exported by UsageMeter):
            mu, calls, failures, latency_ms, issued_at = meter.settled(credential, node, payer)
@custom:security Counters never decrease: the deployable refuses a voucher below any of them
        (reason 12) and one that exceeds a field's width (reason 13) before writing.
"""

from . import masks


# @dev Bit offsets of the fields of a channel word (each field below the next one up).
MU_AT: constant(uint256) = 176
CALLS_AT: constant(uint256) = 128
FAILURES_AT: constant(uint256) = 88
LATENCY_AT: constant(uint256) = 40


# @dev Settled counters per channel, keyed by `key` (one hash for a voucher's read and write).
channel: HashMap[bytes32, uint256]


@internal
@pure
def key(credential_id: uint256, node: address, payer: address) -> bytes32:
    """
    @dev The `channel` key of a (credential, node, payer) channel.
    @param credential_id The credential.
    @param node The node.
    @param payer The payer.
    @return bytes32 keccak256 of the three, ABI-encoded.
    """
    return keccak256(abi_encode(credential_id, node, payer))


@external
@view
def settled(credential_id: uint256, node: address, payer: address) -> (uint256, uint64, uint64, uint64, uint64):
    """
    @dev The cumulative counters settled on a channel and the `issued_at` of its last voucher.
    @param credential_id The credential.
    @param node The node.
    @param payer The payer.
    @return uint256 cumulative_mu
    @return uint64 cumulative_calls
    @return uint64 cumulative_failures
    @return uint64 cumulative_latency_ms
    @return uint64 issued_at
    """
    p: uint256 = self.channel[self.key(credential_id, node, payer)]
    return (
        p >> MU_AT,
        convert((p >> CALLS_AT) & masks.MASK48, uint64),
        convert((p >> FAILURES_AT) & masks.MASK40, uint64),
        convert((p >> LATENCY_AT) & masks.MASK48, uint64),
        convert(p & masks.MASK40, uint64),
    )
