# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Proof of Access score formula
@custom:contract-name poa_score
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns the quality and reliability formula of AccessStaking (the header of
        contracts/AccessStaking.vy states it; `codexfield.poa` mirrors it in Python) and its
        constants: the latency bound, the three weights and the EMA factor. Reads no storage:
        AccessStaking's `finalize_epoch` feeds it the medians of an epoch's stored reports, and
        the exported `score_reports` view runs the same code on reports given as arguments.
        The formula is written out once, in the header of contracts/AccessStaking.vy (A, L, U,
        q and r' there are `_quality`'s steps; the medians are `_median`).

        Example (in the deployable that `initializes: poa_score`):
            q, r = poa_score._quality(poa_score._median(avail), poa_score._median(lat), mu, failed_mu, r)
@custom:security Pure arithmetic over bounded inputs (at most MAX_COMMITTEE reports, fractions
        <= WAD); the deployable checks the weights (wA + wL + wU == BPS, wA + wL > 0).
"""

from interfaces import IAccessStaking


# @dev Fixed-point one.
WAD: public(constant(uint256)) = 10**18


# @dev Basis points in a whole.
BPS: public(constant(uint256)) = 10_000


# @dev Largest reporter committee (one report slot per member and (epoch, node)).
MAX_COMMITTEE: public(constant(uint256)) = 15


# @dev Latency (ms) at and above which the latency score is 0.
latency_max_ms: immutable(uint256)


# @dev Weights of availability, latency and usage success, in basis points (sum BPS).
w_availability: immutable(uint256)
w_latency: immutable(uint256)
w_usage: immutable(uint256)


# @dev EMA factor of the reliability, in basis points.
alpha_bps: immutable(uint256)


@deploy
def __init__(
    latency_max_ms_: uint256, w_availability_: uint256, w_latency_: uint256, w_usage_: uint256, alpha_bps_: uint256
):
    """
    @dev Sets the formula's constants (the deployable checked them).
    @param latency_max_ms_ Latency bound in ms (non-zero).
    @param w_availability_ Weight of availability, bps.
    @param w_latency_ Weight of latency, bps.
    @param w_usage_ Weight of usage success, bps.
    @param alpha_bps_ EMA factor, bps (1..BPS).
    """
    latency_max_ms = latency_max_ms_
    w_availability = w_availability_
    w_latency = w_latency_
    w_usage = w_usage_
    alpha_bps = alpha_bps_


@external
@view
def score_reports(
    samples: DynArray[IAccessStaking.Sample, MAX_COMMITTEE], mu: uint256, failed_mu: uint256, prev_reliability: uint256
) -> (uint256, uint256):
    """
    @dev The epoch quality and next reliability for up to MAX_COMMITTEE reports (medians, as in
         finalize).
    @param samples The reports (at least one).
    @param mu Paid MU settled by the node in the epoch (0: no usage term).
    @param failed_mu MU of failed paid calls (capped at mu).
    @param prev_reliability The reliability before the epoch (<= WAD).
    @return uint256 The quality q, WAD.
    @return uint256 The new reliability r', WAD.
    """
    assert len(samples) > 0, "poa: no probes"
    assert prev_reliability <= WAD, "poa: bad fraction"
    avail: DynArray[uint256, MAX_COMMITTEE] = []
    lat: DynArray[uint256, MAX_COMMITTEE] = []
    for smp: IAccessStaking.Sample in samples:
        assert smp.probes > 0, "poa: no probes"
        assert smp.successes <= smp.probes, "poa: successes exceed probes"
        avail.append(convert(smp.successes, uint256) * WAD // convert(smp.probes, uint256))
        lat.append(convert(smp.latency_ms, uint256))
    return self._quality(self._median(avail), self._median(lat), mu, failed_mu, prev_reliability)


@internal
@view
def _quality(
    availability: uint256, latency_ms: uint256, mu: uint256, failed_mu: uint256, prev: uint256
) -> (uint256, uint256):
    """
    @dev The header formula from the medians.
    @param availability Median availability, WAD.
    @param latency_ms Median latency in ms.
    @param mu Paid MU (0: no usage term).
    @param failed_mu MU of failed paid calls (capped at mu).
    @param prev The previous reliability, WAD.
    @return uint256 The quality, WAD.
    @return uint256 The new reliability, WAD.
    """
    lat_score: uint256 = 0
    t: uint256 = latency_ms * WAD // latency_max_ms
    if t < WAD:
        lat_score = WAD - t
    q: uint256 = 0
    if mu > 0:
        m: uint256 = mu
        f: uint256 = min(failed_mu, mu)
        if m >= 2**128:
            # Keep m * WAD in range (no realistic meter gets here; the Python mirror does the same).
            m = m >> 128
            f = f >> 128
        usage: uint256 = (m - f) * WAD // m
        # wA + wL + wU == BPS (constructor check)
        q = (w_availability * availability + w_latency * lat_score + w_usage * usage) // BPS
    else:
        q = (w_availability * availability + w_latency * lat_score) // (w_availability + w_latency)
    return q, (alpha_bps * q + (BPS - alpha_bps) * prev) // BPS


@internal
@pure
def _median(values: DynArray[uint256, MAX_COMMITTEE]) -> uint256:
    """
    @dev Median by insertion sort (n <= MAX_COMMITTEE); an even count gives the floor mean of the
         middle two.
    @param values The values (at least one).
    @return uint256 The median.
    """
    v: DynArray[uint256, MAX_COMMITTEE] = values
    n: uint256 = len(v)
    for i: uint256 in range(1, MAX_COMMITTEE):
        if i >= n:
            break
        x: uint256 = v[i]
        j: uint256 = i
        for k: uint256 in range(MAX_COMMITTEE):
            if j == 0 or v[j - 1] <= x:
                break
            v[j] = v[j - 1]
            j -= 1
        v[j] = x
    if n % 2 == 1:
        return v[n // 2]
    return (v[n // 2 - 1] + v[n // 2]) // 2
