"""AccessStaking: registration, stake, thawing, reports, scoring, jail/slash/eject, rewards."""

from __future__ import annotations

from dataclasses import replace

import ape
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexfield import poa

from poa_helpers import BAD, EPOCH, GOOD, PARAMS, REGION, THAW, WAD, WINDOW, ZERO, System

MISSING_ROLE = "access_control: account is missing role"


@pytest.fixture(scope="module")
def reporters(accounts, reporter):
    return [reporter, accounts[8], accounts[9]]


@pytest.fixture(scope="module")
def sys_(project, chain, admin, reporters):
    return System(project, chain, admin, reporters)


@pytest.fixture(scope="module")
def staking(sys_):
    return sys_.staking


@pytest.fixture(scope="module")
def meter(project, admin, sys_):
    return admin.deploy(project.MockUsageMeter, EPOCH, sys_.genesis)


def _reward_balance(s: System) -> int:
    return int(s.rwd.balanceOf(s.staking))


# ---------------------------------------------------------------------------------------------
# Constructor and views
# ---------------------------------------------------------------------------------------------


def test_constructor__params_and_roles__as_given(staking, sys_, admin, reporters):
    assert poa.Params.from_chain(staking) == PARAMS
    assert staking.stake_token() == sys_.stk and staking.reward_token() == sys_.rwd
    assert staking.epoch_length() == EPOCH
    assert staking.committee_size(0) == 3 and staking.MAX_COMMITTEE() == poa.MAX_COMMITTEE
    assert [tuple(staking.reporter_seat(i)) for i in range(3)] == [(r, 0, 2**48 - 1) for r in reporters]
    assert all(staking.is_reporter(r, 0) for r in reporters) and staking.usage_meter() == ZERO
    assert staking.hasRole(staking.DEFAULT_ADMIN_ROLE(), admin)
    assert staking.hasRole(staking.PAUSER_ROLE(), admin)
    assert staking.current_epoch() == 0 and staking.next_epoch() == 0


@pytest.mark.parametrize(
    "override, reason",
    [
        ({"min_stake": 0}, "poa: bad min stake"),
        ({"thaw_period": EPOCH + WINDOW}, "poa: thaw too short"),
        ({"quorum": 0}, "poa: bad quorum"),
        ({"quorum": 16}, "poa: bad quorum"),
        ({"latency_max_ms": 0}, "poa: zero latency max"),
        ({"weight_usage_bps": 2_001}, "poa: bad weights"),
        ({"weight_availability_bps": 0, "weight_latency_bps": 0, "weight_usage_bps": 10_000}, "poa: bad weights"),
        ({"alpha_bps": 0}, "poa: bad alpha"),
        ({"alpha_bps": 10_001}, "poa: bad alpha"),
        ({"initial_reliability": WAD + 1}, "poa: bad fraction"),
        ({"quality_floor": WAD + 1}, "poa: bad fraction"),
        ({"strikes_to_jail": 0}, "poa: bad strikes"),
        ({"max_jails": 0}, "poa: bad max jails"),
        ({"jail_epochs": 0}, "poa: bad jail epochs"),
        ({"slash_bps": 10_001}, "poa: bad slash"),
        ({"slash_cap_bps": 10_001}, "poa: bad slash"),
    ],
)
def test_constructor__bad_params__revert(project, admin, sys_, override, reason, deploy_reverts):
    p = replace(PARAMS, **override)
    deploy_reverts(admin, project.AccessStaking, sys_.stk, sys_.rwd, admin, 0, EPOCH, p.as_tuple(), [], reason=reason)


def test_constructor__bad_addresses_epochs_and_reporters__revert(project, admin, sys_, chain, stranger, deploy_reverts):
    args = [sys_.stk, sys_.rwd, admin, 0, EPOCH, PARAMS.as_tuple(), []]
    cases = [
        (0, ZERO, "poa: zero token"),
        (2, ZERO, "poa: zero admin"),
        (4, 0, "poa: zero epoch length"),
        (3, chain.pending_timestamp + 10_000, "poa: genesis in the future"),
        (6, [stranger, ZERO], "poa: zero reporter"),
        (6, [stranger, stranger], "poa: already a reporter"),
    ]
    for idx, value, reason in cases:
        a = list(args)
        a[idx] = value
        deploy_reverts(admin, project.AccessStaking, *a, reason=reason)


def test_constructor__explicit_genesis__is_used(project, admin, sys_, chain):
    g = chain.pending_timestamp - 5 * EPOCH - 7
    s = admin.deploy(project.AccessStaking, sys_.stk, sys_.rwd, admin, g, EPOCH, PARAMS.as_tuple(), [])
    assert s.genesis() == g
    assert s.current_epoch() == 5


# ---------------------------------------------------------------------------------------------
# Registration and profile
# ---------------------------------------------------------------------------------------------


def test_register__stake_pulled_and_profile_stored(sys_, staking, node, stranger):
    tx = sys_.register(node, 500 * WAD, services=1 | 8, tee=stranger, endpoint="https://n1.example")
    n = staking.node(node)
    assert (n.stake, n.unbonding, n.services, n.status) == (500 * WAD, 0, 9, poa.Status.ACTIVE)
    assert n.reliability == PARAMS.initial_reliability and n.strikes == 0 and n.jailed_until == 0
    assert staking.is_active(node) and staking.tee_signer(node) == stranger
    assert staking.region(node) == REGION and staking.endpoint(node) == "https://n1.example"
    assert staking.node_count() == 1 and staking.node_at(0) == node
    assert staking.total_staked() == 500 * WAD == sys_.stk.balanceOf(staking)
    ev = tx.events.filter(staking.NodeRegistered)[0]
    assert ev.node == node and ev.stake == 500 * WAD and ev.services == 9 and ev.tee_signer == stranger
    assert ev.endpoint == "https://n1.example" and ev.reliability == PARAMS.initial_reliability


def test_register__invalid__reverts(sys_, staking, node):
    sys_.fund_stake(node, 10**30)
    with ape.reverts("poa: stake below minimum"):
        staking.register_node("e", 1, REGION, ZERO, 99 * WAD, sender=node)
    with ape.reverts("poa: bad services"):
        staking.register_node("e", 0, REGION, ZERO, 100 * WAD, sender=node)
    with ape.reverts("poa: bad services"):
        staking.register_node("e", 32, REGION, ZERO, 100 * WAD, sender=node)
    with ape.reverts("poa: tee signer required"):
        staking.register_node("e", 8, REGION, ZERO, 100 * WAD, sender=node)
    with ape.reverts("poa: empty endpoint"):
        staking.register_node("", 1, REGION, ZERO, 100 * WAD, sender=node)
    with ape.reverts("poa: amount too large"):
        staking.register_node("e", 1, REGION, ZERO, 2**96, sender=node)
    staking.register_node("e", 1, REGION, ZERO, 100 * WAD, sender=node)
    with ape.reverts("poa: already registered"):
        staking.register_node("e", 1, REGION, ZERO, 100 * WAD, sender=node)


def test_register__paused__reverts_and_unpause_resumes(sys_, staking, node, admin, stranger):
    with ape.reverts(MISSING_ROLE):
        staking.pause(sender=stranger)
    staking.pause(sender=admin)
    sys_.fund_stake(node, 100 * WAD)
    with ape.reverts("poa: paused"):
        staking.register_node("e", 1, REGION, ZERO, 100 * WAD, sender=node)
    with ape.reverts(MISSING_ROLE):
        staking.unpause(sender=stranger)
    staking.unpause(sender=admin)
    staking.register_node("e", 1, REGION, ZERO, 100 * WAD, sender=node)


def test_update_node__profile_and_price__replaced_even_when_paused(sys_, staking, node, admin, stranger):
    sys_.register(node)
    staking.pause(sender=admin)
    tx = staking.update_node("https://new", 2 | 8, b"us-east\x00", stranger, 123, sender=node)
    assert staking.endpoint(node) == "https://new" and staking.price_per_mu(node) == 123
    assert staking.node(node).services == 10 and staking.tee_signer(node) == stranger
    assert staking.region(node) == b"us-east\x00"
    ev = tx.events.filter(staking.NodeUpdated)[0]
    assert ev.price_per_mu == 123 and ev.services == 10 and ev.endpoint == "https://new"
    with ape.reverts("poa: unknown node"):
        staking.update_node("x", 1, REGION, ZERO, 0, sender=stranger)
    with ape.reverts("poa: tee signer required"):
        staking.update_node("x", 8, REGION, ZERO, 0, sender=node)


# ---------------------------------------------------------------------------------------------
# Stake, thawing, withdrawal
# ---------------------------------------------------------------------------------------------


def test_add_stake__increases_stake__and_reverts_on_misuse(sys_, staking, node, admin, stranger):
    sys_.register(node, 100 * WAD)
    sys_.fund_stake(node, 50 * WAD)
    tx = staking.add_stake(50 * WAD, sender=node)
    assert staking.node(node).stake == 150 * WAD and staking.total_staked() == 150 * WAD
    assert tx.events.filter(staking.StakeChanged)[0].stake == 150 * WAD
    with ape.reverts("poa: zero amount"):
        staking.add_stake(0, sender=node)
    with ape.reverts("poa: unknown node"):
        staking.add_stake(1, sender=stranger)
    with ape.reverts("poa: amount too large"):
        staking.add_stake(2**96, sender=node)
    staking.pause(sender=admin)
    with ape.reverts("poa: paused"):
        staking.add_stake(1, sender=node)


def test_request_unbond__moves_stake_to_thawing(sys_, staking, node, stranger):
    sys_.register(node, 300 * WAD)
    tx = staking.request_unbond(100 * WAD, sender=node)
    n = staking.node(node)
    assert (n.stake, n.unbonding) == (200 * WAD, 100 * WAD)
    assert staking.total_staked() == 200 * WAD and staking.total_thawing() == 100 * WAD
    ev = tx.events.filter(staking.UnbondRequested)[0]
    assert ev.amount == 100 * WAD and ev.unbonding == 100 * WAD and ev.thaw_end == tx.timestamp + THAW
    with ape.reverts("poa: zero amount"):
        staking.request_unbond(0, sender=node)
    with ape.reverts("poa: insufficient stake"):
        staking.request_unbond(201 * WAD, sender=node)
    with ape.reverts("poa: below min stake"):
        staking.request_unbond(150 * WAD, sender=node)
    with ape.reverts("poa: unknown node"):
        staking.request_unbond(1, sender=stranger)
    staking.request_unbond(200 * WAD, sender=node)  # a full exit is allowed
    assert staking.node(node).stake == 0 and not staking.is_active(node)


def test_withdraw_unbonded__after_thaw_and_finalization__pays_even_when_paused(sys_, staking, node, admin, stranger):
    sys_.register(node, 300 * WAD)
    sys_.goto(0, 10)
    tx = staking.request_unbond(100 * WAD, sender=node)
    thaw_end = tx.timestamp + THAW
    with ape.reverts("poa: nothing to withdraw"):
        staking.withdraw_unbonded(sender=stranger)
    with ape.reverts("poa: still thawing"):
        staking.withdraw_unbonded(sender=node)
    sys_.chain.pending_timestamp = thaw_end
    with ape.reverts("poa: epochs not finalized"):
        staking.withdraw_unbonded(sender=node)
    sys_.finalize_through((thaw_end - sys_.genesis) // EPOCH - 1, stranger)
    staking.pause(sender=admin)
    before = sys_.stk.balanceOf(node)
    tx = staking.withdraw_unbonded(sender=node)
    assert sys_.stk.balanceOf(node) - before == 100 * WAD
    assert tx.events.filter(staking.Withdrawn)[0].amount == 100 * WAD
    assert staking.node(node).unbonding == 0 and staking.total_thawing() == 0
    assert sys_.stk.balanceOf(staking) == staking.total_staked() == 200 * WAD


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def test_submit_reports__stored_and_logged(sys_, staking, node, reporters):
    sys_.register(node)
    sys_.goto(0, 5)
    tx = staking.submit_reports(0, [(node, 20, 19, 150)], sender=reporters[0])
    staking.submit_reports(0, [(node, 10, 10, 90)], sender=reporters[1])
    ev = tx.events.filter(staking.Reported)[0]
    assert (ev.epoch, ev.reporter, ev.node, ev.probes, ev.successes, ev.latency_ms) == (
        0,
        reporters[0],
        node,
        20,
        19,
        150,
    )
    assert [tuple(s) for s in staking.reports(0, node)] == [(20, 19, 150), (10, 10, 90)]
    assert staking.epoch_reports(0) == 2


def test_submit_reports__window__open_from_start_until_window_after_end(sys_, staking, node, reporters):
    sys_.register(node)
    with ape.reverts("poa: epoch not started"):
        staking.submit_reports(1, [(node, 1, 1, 1)], sender=reporters[0])
    sys_.goto(1, EPOCH + WINDOW - 1)  # last second of epoch 1's window
    staking.submit_reports(1, [(node, 1, 1, 1)], sender=reporters[0])
    with ape.reverts("poa: reporting closed"):
        staking.submit_reports(0, [(node, 1, 1, 1)], sender=reporters[1])
    sys_.goto(2, WINDOW)
    with ape.reverts("poa: reporting closed"):
        staking.submit_reports(1, [(node, 1, 1, 1)], sender=reporters[1])


def test_submit_reports__invalid__reverts(sys_, staking, node, reporters, stranger, admin):
    sys_.register(node)
    r = reporters[0]
    with ape.reverts("poa: not in committee"):
        staking.submit_reports(0, [(node, 1, 1, 1)], sender=stranger)
    with ape.reverts("poa: unknown node"):
        staking.submit_reports(0, [(stranger, 1, 1, 1)], sender=r)
    with ape.reverts("poa: no probes"):
        staking.submit_reports(0, [(node, 0, 0, 1)], sender=r)
    with ape.reverts("poa: successes exceed probes"):
        staking.submit_reports(0, [(node, 1, 2, 1)], sender=r)
    with ape.reverts("poa: duplicate report"):
        staking.submit_reports(0, [(node, 1, 1, 1), (node, 2, 2, 2)], sender=r)
    staking.add_reporter(node, sender=admin)
    sys_.goto(1, 5)
    with ape.reverts("poa: self report"):
        staking.submit_reports(1, [(node, 1, 1, 1)], sender=node)
    staking.pause(sender=admin)
    with ape.reverts("poa: paused"):
        staking.submit_reports(1, [(node, 1, 1, 1)], sender=r)


# ---------------------------------------------------------------------------------------------
# Finalization and scoring
# ---------------------------------------------------------------------------------------------


def test_finalize__guards__revert(sys_, staking, node, reporters, stranger):
    sys_.register(node)
    sys_.goto(0, 5)
    sys_.report(0, reporters, {node: GOOD})
    with ape.reverts("poa: not next epoch"):
        staking.finalize_epoch(1, 10, sender=stranger)
    sys_.goto(1, WINDOW - 1)
    with ape.reverts("poa: reporting open"):
        staking.finalize_epoch(0, 10, sender=stranger)
    sys_.goto(1, WINDOW)
    with ape.reverts("poa: bad page size"):
        staking.finalize_epoch(0, 0, sender=stranger)
    with ape.reverts("poa: bad page size"):
        staking.finalize_epoch(0, 257, sender=stranger)
    assert staking.finalize_epoch(0, 10, sender=stranger).return_value is True
    with ape.reverts("poa: not next epoch"):
        staking.finalize_epoch(0, 10, sender=stranger)


def test_finalize__empty_epoch__carries_pool_to_next(sys_, staking, stranger):
    sys_.fund(stranger, 1_000)
    txs = sys_.finalize(0, stranger)
    ev = txs[0].events.filter(staking.EpochFinalized)[0]
    assert (ev.pool, ev.total_weight, ev.carried) == (1_000, 0, 1_000)
    assert staking.reward_pool(1) == 1_000 and staking.rewards_undistributed() == 1_000


def test_finalize__scores_with_medians_and_usage__matches_python(
    sys_, staking, node, reporters, meter, admin, stranger
):
    sys_.register(node)
    staking.wire(meter, sender=admin)
    meter.set_node_usage(node, 0, 200, 30, 0, 5_000, 600, sender=stranger)
    samples = [(20, 19, 150), (24, 20, 300), (10, 3, 1_500)]
    sys_.goto(0, 5)
    sys_.report(0, reporters, {node: samples})
    tx = sys_.finalize(0, stranger)[0]
    q, r = poa.score_reports(samples, 5_000, 600, PARAMS.initial_reliability, PARAMS)
    # the usage term is paid MU: 600 of 5,000 MU failed (calls/failures do not enter)
    assert poa.usage_success(5_000, 600) == 88 * WAD // 100
    ev = tx.events.filter(staking.EpochScored)[0]
    assert (ev.epoch, ev.node, ev.quality, ev.reliability, ev.strikes) == (0, node, q, r, 0)
    # Stake added in epoch 0 (registration) does not earn in epoch 0.
    assert ev.weight == 0
    assert staking.node(node).reliability == r
    assert staking.score_reports(samples, 5_000, 600, PARAMS.initial_reliability) == (q, r)


def test_finalize__below_quorum__epoch_does_not_count(sys_, staking, node, reporters, stranger):
    sys_.register(node)
    sys_.goto(1, 5)
    sys_.report(1, reporters[:2], {node: BAD})
    sys_.finalize_through(1, stranger)
    n = staking.node(node)
    assert n.reliability == PARAMS.initial_reliability and n.strikes == 0


def test_finalize__paginated__one_node_per_call(sys_, staking, reporters, stranger, accounts):
    nodes = [accounts[i] for i in (1, 2, 3, 4)]
    for a in nodes:
        sys_.register(a)
    sys_.goto(0, 5)
    sys_.report(0, reporters, {a: GOOD for a in nodes})
    txs = sys_.finalize(0, stranger, page=1)
    assert len(txs) == 4
    assert [t.return_value for t in txs] == [False, False, False, True]
    assert staking.finalize_cursor() == 0
    scored = [t.events.filter(staking.EpochScored)[0].node for t in txs]
    assert sorted(map(str, scored)) == sorted(map(str, nodes))


def test_lying_reporter__one_of_three__cannot_move_median(sys_, staking, node, reporters, stranger):
    sys_.register(node)
    honest = (20, 19, 150)
    sys_.goto(0, 5)
    sys_.report(0, reporters, {node: [honest, honest, (20, 0, 60_000)]})
    tx = sys_.finalize(0, stranger)[0]
    q, _ = poa.score(*honest, prev_reliability=PARAMS.initial_reliability, params=PARAMS)
    assert tx.events.filter(staking.EpochScored)[0].quality == q
    # and a lone flattering liar cannot lift a bad node
    sys_.goto(1, 5)
    sys_.report(1, reporters, {node: [BAD, BAD, (20, 20, 1)]})
    tx = sys_.finalize(1, stranger)[0]
    assert tx.events.filter(staking.EpochScored)[0].quality == poa.score(*BAD, params=PARAMS)[0]


def _strike_out(sys_, node, reporters, stranger, first_epoch, n):
    for e in range(first_epoch, first_epoch + n):
        sys_.goto(e, 5)
        sys_.report(e, reporters, {node: BAD})
        sys_.finalize_through(e, stranger)


def test_strikes__consecutive__jail_and_slash_burnt(sys_, staking, node, reporters, stranger):
    sys_.register(node, 1_000 * WAD)
    _strike_out(sys_, node, reporters, stranger, 0, 1)
    assert staking.node(node).strikes == 1
    sys_.goto(1, 5)
    sys_.report(1, reporters, {node: GOOD})  # a good epoch clears the strikes
    sys_.finalize(1, stranger)
    assert staking.node(node).strikes == 0
    _strike_out(sys_, node, reporters, stranger, 2, 1)
    sys_.goto(3, 5)
    sys_.report(3, reporters, {node: BAD})
    tx = sys_.finalize(3, stranger)[0]
    slashed = 1_000 * WAD * PARAMS.slash_bps // 10_000
    ev = tx.events.filter(staking.NodeJailed)[0]
    assert (ev.node, ev.until, ev.slashed) == (node, 3 + 1 + PARAMS.jail_epochs, slashed)
    # Different stake and reward tokens: slashed stake is burnt (stays here, counted, moved by nothing).
    ev = tx.events.filter(staking.StakeSlashed)[0]
    assert (ev.epoch, ev.amount, ev.to_reward_pool) == (3, slashed, False)
    assert staking.burnt_stake() == slashed and staking.reward_pool(4) == 0
    n = staking.node(node)
    assert n.status == poa.Status.JAILED and n.stake == 1_000 * WAD - slashed and n.strikes == 0
    assert not staking.is_active(node)
    assert sys_.stk.balanceOf(staking) == staking.total_staked() + staking.total_thawing() + slashed


def test_jail__runs_out__node_active_again(sys_, staking, node, reporters, stranger):
    sys_.register(node)
    _strike_out(sys_, node, reporters, stranger, 0, 2)
    until = staking.node(node).jailed_until
    assert staking.node(node).status == poa.Status.JAILED
    sys_.goto(until, 1)
    sys_.chain.mine()
    assert staking.node(node).status == poa.Status.ACTIVE
    assert staking.is_active(node)


def test_jailed_node__earns_nothing__others_take_the_pool(sys_, staking, node, reporters, stranger, accounts):
    good = accounts[1]
    sys_.register(node)
    sys_.register(good)
    _strike_out(sys_, node, reporters, stranger, 0, 2)  # node jailed at the end of epoch 1
    sys_.goto(2, 5)
    sys_.fund(stranger, 10**21)
    sys_.report(2, reporters, {node: GOOD, good: GOOD})
    tx = sys_.finalize(2, stranger)[0]
    by_node = {str(e.node): e.weight for e in tx.events.filter(staking.EpochScored)}
    assert by_node[str(node)] == 0 and by_node[str(good)] > 0
    assert staking.claimable(node) == 0
    assert staking.claim_rewards(node, sender=stranger).return_value == 0
    paid = staking.claim_rewards(good, sender=stranger).return_value
    assert paid > 10**21 - 10  # all of the pool, up to rounding dust
    assert sys_.rwd.balanceOf(good) == paid


def test_unbond__cannot_escape_slash(sys_, staking, node, reporters, stranger):
    sys_.register(node, 1_000 * WAD)
    _strike_out(sys_, node, reporters, stranger, 0, 1)
    sys_.goto(1, 5)
    staking.request_unbond(1_000 * WAD, sender=node)  # everything into thawing
    sys_.report(1, reporters, {node: BAD})
    sys_.finalize(1, stranger)
    slashed = 1_000 * WAD * PARAMS.slash_bps // 10_000
    n = staking.node(node)
    assert n.stake == 0 and n.unbonding == 1_000 * WAD - slashed
    assert staking.burnt_stake() == slashed


def test_eject__at_max_jails__stake_thaws_out_and_node_is_removed(sys_, staking, node, reporters, stranger, accounts):
    other = accounts[1]
    sys_.register(node, 1_000 * WAD)
    sys_.register(other, 1_000 * WAD)
    _strike_out(sys_, node, reporters, stranger, 0, 2)  # jail 1, until epoch 4
    until = staking.node(node).jailed_until
    _strike_out(sys_, node, reporters, stranger, until, 2)  # jail 2 = eject
    n = staking.node(node)
    assert n.status == poa.Status.EJECTED and n.stake == 0
    assert n.unbonding == 1_000 * WAD - 50 * WAD - (950 * WAD * 500 // 10_000)
    assert staking.node_count() == 1 and staking.node_at(0) == other
    assert not staking.is_active(node)
    with ape.reverts("poa: node ejected"):
        staking.register_node("e", 1, REGION, ZERO, 100 * WAD, sender=node)
    with ape.reverts("poa: unknown node"):
        staking.submit_reports(int(staking.current_epoch()), [(node, 1, 1, 1)], sender=reporters[0])
    _, thaw_end, _, _ = staking.node_extra(node)
    sys_.chain.pending_timestamp = max(thaw_end, sys_.chain.pending_timestamp)
    sys_.finalize_through((thaw_end - sys_.genesis) // EPOCH - 1, stranger)
    assert staking.withdraw_unbonded(sender=node).return_value == n.unbonding


def test_slash__capacity_per_epoch__caps_total(project, chain, admin, reporters, stranger, accounts):
    p = replace(PARAMS, slash_bps=5_000, slash_cap_bps=1_000, strikes_to_jail=1)
    s = System(project, chain, admin, reporters, params=p)
    nodes = [accounts[i] for i in (1, 2, 3)]
    for a in nodes:
        s.register(a, 1_000 * WAD)
    s.goto(0, 5)
    s.report(0, reporters, {a: BAD for a in nodes})
    tx = s.finalize(0, stranger)[0]
    slashed = [e.slashed for e in tx.events.filter(s.staking.NodeJailed)]
    assert sum(slashed) == 3_000 * WAD * 1_000 // 10_000  # 10% of all stake, not 3 x 50%
    assert slashed[0] == 300 * WAD and slashed[1:] == [0, 0]
    assert s.staking.burnt_stake() == 300 * WAD


# ---------------------------------------------------------------------------------------------
# Rewards
# ---------------------------------------------------------------------------------------------


def test_rewards__pro_rata_to_stake_times_reliability_squared(sys_, staking, reporters, stranger, accounts):
    a, b = accounts[1], accounts[2]
    sys_.register(a, 1_000 * WAD)
    sys_.register(b, 3_000 * WAD)
    sys_.goto(1, 5)
    tx = sys_.fund(stranger, 10**21)
    assert tx.events.filter(staking.RewardsFunded)[0].epoch == 1
    assert staking.reward_pool(1) == 10**21
    sys_.report(1, reporters, {a: GOOD, b: (20, 16, 700)})
    sys_.finalize_through(1, stranger)
    ra = poa.score(*GOOD, params=PARAMS)[1]
    rb = poa.score(20, 16, 700, params=PARAMS)[1]
    wa, wb = poa.weight(1_000 * WAD, ra), poa.weight(3_000 * WAD, rb)
    rpw = 10**21 * poa.RPW_SCALE // (wa + wb)
    assert staking.reward_per_weight(1) == rpw and staking.epoch_weight(1) == wa + wb
    assert staking.claimable(a) == wa * rpw // poa.RPW_SCALE
    tx = staking.claim_rewards(a, sender=stranger)  # anyone triggers, the node is paid
    assert tx.return_value == wa * rpw // poa.RPW_SCALE == sys_.rwd.balanceOf(a)
    assert tx.events.filter(staking.RewardsClaimed)[0].amount == tx.return_value
    assert staking.claim_rewards(a, sender=a).return_value == 0
    paid_b = staking.claim_rewards(b, sender=b).return_value
    assert paid_b == wb * rpw // poa.RPW_SCALE
    dust = 10**21 - tx.return_value - paid_b
    assert 0 <= dust < 3 and staking.rewards_reserved() == dust
    assert _reward_balance(sys_) == dust


def test_rewards__added_stake__earns_from_next_epoch(sys_, staking, node, reporters, stranger):
    sys_.register(node, 1_000 * WAD)
    sys_.finalize_through(0, stranger)  # else the registration's epoch is open and the add merges into it
    sys_.goto(1, WINDOW + 5)
    sys_.fund_stake(node, 1_000 * WAD)
    staking.add_stake(1_000 * WAD, sender=node)
    sys_.report(1, reporters, {node: GOOD})
    sys_.finalize_through(1, stranger)
    r = staking.node(node).reliability
    assert staking.epoch_weight(1) == poa.weight(1_000 * WAD, r)


def test_claim_rewards__works_when_paused(sys_, staking, node, reporters, stranger, admin):
    sys_.register(node)
    sys_.goto(1, 5)
    sys_.fund(stranger, 5 * WAD)
    sys_.report(1, reporters, {node: GOOD})
    sys_.finalize_through(1, stranger)
    staking.pause(sender=admin)
    assert staking.claim_rewards(node, sender=node).return_value > 0
    sys_.fund(stranger, 1)  # funding is never paused (the UsageMeter pays fees through it)


def test_fund_rewards__zero__reverts(staking, stranger):
    with ape.reverts("poa: zero amount"):
        staking.fund_rewards(0, sender=stranger)


def test_same_token__conservation_on_the_sum(project, chain, admin, reporters, stranger, accounts):
    s = System(project, chain, admin, reporters, same_token=True)
    a = accounts[1]
    s.register(a, 1_000 * WAD)
    s.goto(1, 5)
    s.fund(stranger, 7 * WAD)
    s.report(1, reporters, {a: GOOD})
    s.finalize_through(1, stranger)
    st_ = s.staking
    owed = st_.claimable(a)
    total = (
        st_.total_staked()
        + st_.total_thawing()
        + st_.rewards_undistributed()
        + st_.rewards_reserved()
        + st_.rewards_credited()
    )
    assert s.stk.balanceOf(st_) == total
    st_.claim_rewards(a, sender=a)
    assert s.stk.balanceOf(a) == owed
    total = (
        st_.total_staked()
        + st_.total_thawing()
        + st_.rewards_undistributed()
        + st_.rewards_reserved()
        + st_.rewards_credited()
    )
    assert s.stk.balanceOf(st_) == total


def test_slash__same_token__joins_next_epoch_pool_never_an_admin_address(
    project, chain, admin, reporters, stranger, accounts
):
    p = replace(PARAMS, strikes_to_jail=1)
    s = System(project, chain, admin, reporters, params=p, same_token=True)
    bad, good = accounts[1], accounts[2]
    s.register(bad, 1_000 * WAD)
    s.register(good, 1_000 * WAD)
    s.finalize_through(0, stranger)
    s.goto(1, 5)
    s.report(1, reporters, {bad: BAD, good: GOOD})
    tx = s.finalize(1, stranger)[0]
    slashed = 1_000 * WAD * p.slash_bps // 10_000
    ev = tx.events.filter(s.staking.StakeSlashed)[0]
    assert (ev.epoch, ev.amount, ev.to_reward_pool) == (1, slashed, True)
    assert s.staking.reward_pool(2) == slashed and s.staking.burnt_stake() == 0
    assert s.stk.balanceOf(admin) == 0  # nothing reaches governance
    # epoch 2: the good node earns the slashed stake
    s.goto(2, 5)
    s.report(2, reporters, {good: GOOD})
    s.finalize_through(2, stranger)
    assert slashed - 3 <= s.staking.claimable(good) <= slashed
    st_ = s.staking
    total = (
        st_.total_staked()
        + st_.total_thawing()
        + st_.rewards_undistributed()
        + st_.rewards_reserved()
        + st_.rewards_credited()
    )
    assert s.stk.balanceOf(st_) == total


# ---------------------------------------------------------------------------------------------
# Stake top-up across an unfinalized epoch (Low: undercounted in e+1)
# ---------------------------------------------------------------------------------------------


def test_add_stake__in_e_then_in_e_plus_1_before_e_is_final__counts_in_e_plus_1(
    sys_, staking, node, reporters, stranger
):
    sys_.register(node, 1_000 * WAD)
    sys_.finalize_through(0, stranger)
    sys_.fund_stake(node, 3_000 * WAD)
    sys_.goto(1, 5)
    staking.add_stake(1_000 * WAD, sender=node)  # in epoch 1: earns from epoch 2
    sys_.report(1, reporters, {node: GOOD})
    sys_.goto(2, 5)  # epoch 1 is not finalized yet
    staking.add_stake(2_000 * WAD, sender=node)  # in epoch 2: earns from epoch 3
    sys_.report(2, reporters, {node: GOOD})
    sys_.finalize(1, stranger)
    r1 = staking.node(node).reliability
    assert staking.epoch_weight(1) == poa.weight(1_000 * WAD, r1)
    sys_.finalize(2, stranger)
    r2 = staking.node(node).reliability
    assert staking.epoch_weight(2) == poa.weight(2_000 * WAD, r2)  # was 1,000 (the bug)
    sys_.goto(3, 5)
    sys_.report(3, reporters, {node: GOOD})
    sys_.finalize(3, stranger)
    assert staking.epoch_weight(3) == poa.weight(4_000 * WAD, staking.node(node).reliability)


def test_add_stake__three_pending_epochs__never_overcounts(sys_, staking, node, reporters, stranger):
    sys_.register(node, 1_000 * WAD)
    sys_.finalize_through(0, stranger)
    sys_.fund_stake(node, 3_000 * WAD)
    for e in (1, 2, 3):  # nothing finalized meanwhile
        sys_.goto(e, 5)
        staking.add_stake(1_000 * WAD, sender=node)
        sys_.report(e, reporters, {node: GOOD})
    for e, earning in ((1, 1_000), (2, 1_000), (3, 3_000)):  # epoch 2: conservative (2,000 bonded)
        sys_.finalize(e, stranger)
        assert staking.epoch_weight(e) == poa.weight(earning * WAD, staking.node(node).reliability)


# ---------------------------------------------------------------------------------------------
# serves(node, at): what the UsageMeter asks at a voucher's usage time
# ---------------------------------------------------------------------------------------------


def test_serves__registered_not_jailed_bonded_at_the_time(sys_, staking, node, reporters, stranger, chain):
    assert not staking.serves(node, chain.pending_timestamp)
    tx = sys_.register(node, 1_000 * WAD)
    t_reg = tx.timestamp
    assert staking.serves(node, t_reg) and not staking.serves(node, t_reg - 1)
    assert staking.is_active(node)
    _strike_out(sys_, node, reporters, stranger, 0, 1)
    sys_.goto(1, 5)
    sys_.report(1, reporters, {node: BAD})
    tx = sys_.finalize(1, stranger)[0]  # jailed now, until epoch 4
    t_jail = tx.timestamp
    until = staking.node(node).jailed_until
    assert until == 1 + 1 + PARAMS.jail_epochs
    assert staking.serves(node, t_jail - 1)  # usage served before the jail stays payable
    assert not staking.serves(node, t_jail) and not staking.is_active(node)
    assert not staking.serves(node, sys_.start(until) - 1)
    assert staking.serves(node, sys_.start(until))
    staking.request_unbond(staking.node(node).stake, sender=node)  # unbonded: serves nothing any more
    assert not staking.serves(node, t_jail - 1)


# ---------------------------------------------------------------------------------------------
# Reporter committee (Medium 5, Low "reporter ids never freed")
# ---------------------------------------------------------------------------------------------


def test_committee__changes_take_effect_next_epoch(sys_, staking, node, reporters, admin, stranger, accounts):
    sys_.register(node)
    newcomer = accounts[11]
    sys_.goto(0, 5)
    with ape.reverts(MISSING_ROLE):
        staking.add_reporter(newcomer, sender=stranger)
    with ape.reverts(MISSING_ROLE):
        staking.remove_reporter(reporters[2], sender=stranger)
    tx = staking.add_reporter(newcomer, sender=admin)
    ev = tx.events.filter(staking.ReporterAdded)[0]
    assert (ev.reporter, ev.slot, ev.from_epoch) == (newcomer, 3, 1)
    tx = staking.remove_reporter(reporters[2], sender=admin)
    ev = tx.events.filter(staking.ReporterRemoved)[0]
    assert (ev.reporter, ev.slot, ev.until_epoch) == (reporters[2], 2, 1)
    assert staking.committee_size(0) == 3 and staking.committee_size(1) == 3
    with ape.reverts("poa: not in committee"):
        staking.submit_reports(0, [(node, 1, 1, 1)], sender=newcomer)
    staking.submit_reports(0, [(node, 1, 1, 1)], sender=reporters[2])  # still sits in epoch 0
    with ape.reverts("poa: already a reporter"):
        staking.add_reporter(reporters[0], sender=admin)
    with ape.reverts("poa: not a reporter"):
        staking.remove_reporter(reporters[2], sender=admin)
    with ape.reverts("poa: not a reporter"):
        staking.remove_reporter(stranger, sender=admin)
    with ape.reverts("poa: zero reporter"):
        staking.add_reporter(ZERO, sender=admin)
    sys_.goto(1, 5)
    staking.submit_reports(1, [(node, 1, 1, 1)], sender=newcomer)
    staking.submit_reports(0, [(node, 1, 1, 1)], sender=reporters[1])  # epoch 0's window is open
    with ape.reverts("poa: not in committee"):
        staking.submit_reports(1, [(node, 1, 1, 1)], sender=reporters[2])
    assert staking.is_reporter(newcomer, 1) and not staking.is_reporter(newcomer, 0)
    assert staking.is_reporter(reporters[2], 0) and not staking.is_reporter(reporters[2], 1)


def test_committee__slot_reused_only_after_old_member_is_past_reporting(sys_, staking, admin, reporters, accounts):
    gone, fresh = reporters[2], accounts[11]
    sys_.goto(0, 5)
    staking.remove_reporter(gone, sender=admin)  # sits in epoch 0 only; reports for it until 1 + WINDOW
    sys_.goto(1, WINDOW - 10)
    tx = staking.add_reporter(fresh, sender=admin)
    assert tx.events.filter(staking.ReporterAdded)[0].slot == 3  # slot 2 still reserved
    with ape.reverts("poa: reporter still reporting"):
        staking.add_reporter(gone, sender=admin)
    sys_.goto(1, WINDOW)
    tx = staking.add_reporter(gone, sender=admin)  # comes back: its old slot is free again
    ev = tx.events.filter(staking.ReporterAdded)[0]
    assert (ev.slot, ev.from_epoch) == (2, 2)
    assert staking.committee_size(1) == 2 and staking.committee_size(2) == 4


def test_committee__bounded__and_slots_recycle_forever(sys_, staking, admin, accounts):
    # fill every slot, then churn members through one slot many more times than the old cap allowed
    extra = [accounts.generate_test_account() for _ in range(poa.MAX_COMMITTEE - 3 + 1)]
    for a in extra[:-1]:
        staking.add_reporter(a, sender=admin)
    with ape.reverts("poa: committee full"):
        staking.add_reporter(extra[-1], sender=admin)
    assert staking.committee_size(1) == poa.MAX_COMMITTEE
    # a member added and removed in the same epoch never sat: its slot is free at once
    staking.remove_reporter(extra[0], sender=admin)
    for _ in range(3):
        staking.add_reporter(extra[-1], sender=admin)
        staking.remove_reporter(extra[-1], sender=admin)
    assert staking.reporter_seat(3)[0] == ZERO
    e = 1
    for _ in range(4):  # remove, wait out the window, add someone new in the same slot
        who = accounts.generate_test_account()
        staking.add_reporter(who, sender=admin)
        assert staking.reporter_seat(3)[0] == who
        sys_.goto(e + 1, 1)
        staking.remove_reporter(who, sender=admin)
        e += 2
        sys_.goto(e, WINDOW)
    assert staking.committee_size(e) == poa.MAX_COMMITTEE - 1


def _committee_of(project, chain, admin, accounts, size):
    members = [accounts.generate_test_account() for _ in range(size)]
    for m in members:
        m.balance = 10**20
    return System(project, chain, admin, members), members


@pytest.fixture(scope="module")
def nine(project, chain, admin, accounts):
    s, members = _committee_of(project, chain, admin, accounts, 9)
    nodes = [accounts[1], accounts[2]]
    for n in nodes:
        s.register(n, 1_000 * WAD)
    return s, members, nodes


HONEST = [(20, 19, 150), (20, 20, 120), (20, 18, 200), (20, 19, 180), (20, 20, 90)]
LIE_DOWN = (20, 0, 60_000)  # colluders sink the node
LIE_UP = (20, 20, 0)  # colluders flatter the other node


@given(order=st.permutations(list(range(9))))
def test_committee__four_colluders_of_nine__never_decide_a_median_in_any_order(nine, chain, order):
    s, members, (victim, friend) = nine
    snap = chain.snapshot()
    try:
        e = int(s.staking.current_epoch())
        s.finalize_through(e - 1, members[0])
        s.goto(e, 5)
        # members 0..3 collude, 4..8 are honest; each reports both nodes, in the drawn order
        for i in order:
            lie = i < 4
            s.staking.submit_reports(
                e,
                [(victim, *(LIE_DOWN if lie else HONEST[i - 4])), (friend, *(LIE_UP if lie else HONEST[i - 4]))],
                sender=members[i],
            )
        honest_avail = [poa.availability(p, ok) for p, ok, _ in HONEST]
        honest_lat = [lat for _, _, lat in HONEST]
        for n in (victim, friend):
            got = [tuple(x) for x in s.staking.reports(e, n)]
            assert len(got) == 9
            a = poa.median([poa.availability(p, ok) for p, ok, _ in got])
            lat = poa.median([x[2] for x in got])
            assert min(honest_avail) <= a <= max(honest_avail)
            assert min(honest_lat) <= lat <= max(honest_lat)
        tx = s.finalize(e, members[0])[0]
        by_node = {str(ev.node): int(ev.quality) for ev in tx.events.filter(s.staking.EpochScored)}
        q_lo = poa.quality_from(min(honest_avail), max(honest_lat), 0, 0, 0)[0]
        q_hi = poa.quality_from(max(honest_avail), min(honest_lat), 0, 0, 0)[0]
        assert all(q_lo <= by_node[str(n)] <= q_hi for n in (victim, friend))
    finally:
        chain.restore(snap)


def test_committee__minority_alone__never_reaches_quorum(nine, chain):
    s, members, (victim, _) = nine
    snap = chain.snapshot()
    try:
        e = int(s.staking.current_epoch())
        s.finalize_through(e - 1, members[0])
        s.goto(e, 5)
        before = s.staking.node(victim)
        for m in members[:4]:
            s.staking.submit_reports(e, [(victim, *LIE_DOWN)], sender=m)
        tx = s.finalize(e, members[0])[0]
        assert not tx.events.filter(s.staking.EpochScored)  # 4 of 9: the epoch does not count
        after = s.staking.node(victim)
        assert (after.reliability, after.strikes) == (before.reliability, before.strikes)
        # the fifth (a majority) makes it count
        e += 1
        s.goto(e, 5)
        for m in members[:5]:
            s.staking.submit_reports(e, [(victim, *HONEST[0])], sender=m)
        tx = s.finalize(e, members[0])[0]
        assert len(tx.events.filter(s.staking.EpochScored)) == 1
    finally:
        chain.restore(snap)


# ---------------------------------------------------------------------------------------------
# Roles (Medium 6) and wiring (Medium 7)
# ---------------------------------------------------------------------------------------------


def test_constructor__roles_only_to_admin__handover_visible_in_events(project, admin, sys_, stranger):
    s = admin.deploy(project.AccessStaking, sys_.stk, sys_.rwd, stranger, 0, EPOCH, PARAMS.as_tuple(), [])
    roles = [s.DEFAULT_ADMIN_ROLE(), s.PAUSER_ROLE()]
    assert all(s.hasRole(r, stranger) for r in roles)
    assert not any(s.hasRole(r, admin) for r in roles)
    receipt = s.creation_metadata.receipt
    granted = [(bytes(ev.role), str(ev.account)) for ev in receipt.events.filter(s.RoleGranted)]
    revoked = [(bytes(ev.role), str(ev.account)) for ev in receipt.events.filter(s.RoleRevoked)]
    assert revoked == [(bytes(roles[0]), str(admin))]
    # the deployer's DEFAULT_ADMIN (snekmate's constructor) is revoked in the same transaction
    live = set(granted) - set(revoked)
    assert live == {(bytes(roles[0]), str(stranger)), (bytes(roles[1]), str(stranger))}


def test_wire__once__admin__matching_epochs(sys_, staking, meter, project, admin, stranger):
    with ape.reverts(MISSING_ROLE):
        staking.wire(meter, sender=stranger)
    with ape.reverts("poa: zero meter"):
        staking.wire(ZERO, sender=admin)
    bad_len = admin.deploy(project.MockUsageMeter, EPOCH + 1, sys_.genesis)
    bad_gen = admin.deploy(project.MockUsageMeter, EPOCH, sys_.genesis + 1)
    for m in (bad_len, bad_gen):
        with ape.reverts("poa: meter epoch mismatch"):
            staking.wire(m, sender=admin)
    tx = staking.wire(meter, sender=admin)
    assert staking.usage_meter() == meter
    assert tx.events.filter(staking.Wired)[0].usage_meter == meter
    other = admin.deploy(project.MockUsageMeter, EPOCH, sys_.genesis)
    with ape.reverts("poa: already wired"):
        staking.wire(other, sender=admin)
    assert staking.usage_meter() == meter


# ---------------------------------------------------------------------------------------------
# Formula: Python == contract
# ---------------------------------------------------------------------------------------------


def test_score__guards__revert(staking):
    with ape.reverts("poa: no probes"):
        staking.score_reports([(0, 0, 1)], 0, 0, 0)
    with ape.reverts("poa: successes exceed probes"):
        staking.score_reports([(1, 2, 1)], 0, 0, 0)
    with ape.reverts("poa: bad fraction"):
        staking.score_reports([(1, 1, 1)], 0, 0, WAD + 1)
    with ape.reverts("poa: no probes"):
        staking.score_reports([], 0, 0, 0)


_report = st.integers(1, 2**32 - 1).flatmap(
    lambda p: st.tuples(st.just(p), st.integers(0, p), st.one_of(st.integers(0, 3_000), st.integers(0, 2**32 - 1)))
)


@given(
    sample=_report,
    mu=st.one_of(st.integers(0, 10**9), st.integers(0, 2**256 - 1)),
    failed=st.one_of(st.integers(0, 10**9), st.integers(0, 2**256 - 1)),
    prev=st.integers(0, WAD),
)
def test_score__python_equals_contract(staking, sample, mu, failed, prev):
    assert staking.score_reports([sample], mu, failed, prev) == poa.score(*sample, mu, failed, prev, PARAMS)


@given(
    samples=st.lists(_report, min_size=1, max_size=poa.MAX_COMMITTEE),
    mu=st.integers(0, 10**12),
    failed=st.integers(0, 10**12),
    prev=st.integers(0, WAD),
)
def test_score_reports__python_equals_contract(staking, samples, mu, failed, prev):
    assert staking.score_reports(samples, mu, failed, prev) == poa.score_reports(samples, mu, failed, prev, PARAMS)


def test_token_calls__false_return__revert_with_poa_reason(project, chain, admin, reporters, stranger, accounts):
    tok = admin.deploy(project.MockFalseToken)
    st_ = admin.deploy(project.AccessStaking, tok, tok, admin, 0, EPOCH, PARAMS.as_tuple(), reporters)
    a = accounts[1]
    tok.mint(a, 10_000 * WAD, sender=a)
    tok.approve(st_, 2**256 - 1, sender=a)
    st_.register_node("https://n", 1, REGION, ZERO, 1_000 * WAD, sender=a)
    tok.refuse(True, sender=a)
    with ape.reverts("poa: transfer failed"):
        st_.register_node("https://n", 1, REGION, ZERO, 1_000 * WAD, sender=accounts[2])
    with ape.reverts("poa: transfer failed"):
        st_.add_stake(1, sender=a)
    with ape.reverts("poa: transfer failed"):
        st_.fund_rewards(1, sender=a)
    tok.refuse(False, sender=a)
    st_.request_unbond(1_000 * WAD, sender=a)
    chain.pending_timestamp += THAW + 2 * EPOCH
    chain.mine()
    e = int(st_.current_epoch())
    for ep in range(e):
        st_.finalize_epoch(ep, 10, sender=stranger)
    tok.refuse(True, sender=a)
    with ape.reverts("poa: transfer failed"):
        st_.withdraw_unbonded(sender=a)
