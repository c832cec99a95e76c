"""codexfield.poa: formula by hand, simulator outcomes, routing, CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from codexfield import poa
from codexfield.cli.poa import poa_group
from codexfield.poa import WAD


def test_median__odd_and_even_counts():
    assert poa.median([5, 1, 3]) == 3
    assert poa.median([4, 1, 3, 10]) == 3  # floor((3 + 4) / 2)
    with pytest.raises(ValueError):
        poa.median([])


def test_score__worked_example__by_hand():
    # availability 19/20 = 0.95, latency 200 ms -> 1 - 200/2000 = 0.9, usage (paid MU) 970/1000 = 0.97
    q, r = poa.score(20, 19, 200, mu=1_000, failed_mu=30, prev_reliability=WAD // 2)
    assert q == (6_000 * 95 * 10**16 + 2_000 * 9 * 10**17 + 2_000 * 97 * 10**16) // 10_000 == 944 * 10**15
    assert r == (2_000 * q + 8_000 * WAD // 2) // 10_000 == 5888 * 10**14


def test_score__no_usage__reweights_availability_and_latency():
    q, _ = poa.score(10, 10, 0)
    assert q == WAD
    q, _ = poa.score(10, 5, 4_000)  # latency beyond the max scores 0
    assert q == 6_000 * (WAD // 2) // 8_000


def test_score__failed_mu_capped_at_mu():
    assert poa.score(1, 1, 0, mu=10, failed_mu=99)[0] == poa.score(1, 1, 0, mu=10, failed_mu=10)[0]


def test_usage_success__weighed_by_paid_mu__huge_values_scaled_like_the_contract():
    assert poa.usage_success(0, 5) is None  # no paid MU (free vouchers): no usage term
    assert poa.usage_success(1_000, 250) == 3 * WAD // 4
    big = 2**200
    assert poa.usage_success(big, big // 4) == ((big >> 128) - ((big // 4) >> 128)) * WAD // (big >> 128)


def test_counts__strict_committee_majority_and_quorum():
    assert not poa.counts(4, 9) and poa.counts(5, 9)
    assert not poa.counts(2, 4) and poa.counts(3, 4)
    assert not poa.counts(2, 2, poa.Params(quorum=3)) and poa.counts(1, 1, poa.Params(quorum=1))


def test_score_reports__lying_minority__does_not_move_result():
    honest = (20, 19, 150)
    assert poa.score_reports([honest, honest, (20, 0, 60_000)]) == poa.score(*honest)


def test_score__bad_input__raises():
    with pytest.raises(ValueError):
        poa.score(0, 0, 1)
    with pytest.raises(ValueError):
        poa.score(1, 2, 1)
    with pytest.raises(ValueError):
        poa.score_reports([(1, 1, 1)] * (poa.MAX_COMMITTEE + 1))


def test_simulator__rewards_concentrate_and_bad_nodes_are_ejected():
    sim = poa.Simulator(poa.mixed_population(60, seed=3), seed=3)
    sim.run(40, 1_000 * WAD)
    summary = poa.class_summary(sim)
    assert summary["bad"]["ejected"] == summary["bad"]["nodes"]
    assert summary["good"]["ejected"] == 0
    assert (
        summary["good"]["reward_per_token"]
        > summary["average"]["reward_per_token"]
        > summary["flaky"]["reward_per_token"]
    )
    assert summary["flaky"]["reward_per_token"] > summary["bad"]["reward_per_token"]
    paid = sum(n.rewards for n in sim.nodes)
    assert paid <= 40 * 1_000 * WAD and 40 * 1_000 * WAD - paid < 40 * len(sim.nodes)  # dust only
    assert sim.burnt == sum(n.slashed for n in sim.nodes) > 0  # different tokens: burnt


def test_simulator__same_token__slashed_stake_funds_the_next_pool():
    p = poa.Params(strikes_to_jail=1)
    bad, good = poa.SimNode("bad", stake=1_000 * WAD), poa.SimNode("good", stake=1_000 * WAD)
    sim = poa.Simulator([bad, good], p, same_token=True)
    sim.step(0, reports={"bad": [(10, 0, 2_000)] * 3, "good": [(10, 10, 100)] * 3})
    slashed = 1_000 * WAD * p.slash_bps // 10_000
    assert bad.slashed == slashed and sim.burnt == 0 and sim.carry == slashed
    res = sim.step(0, reports={"good": [(10, 10, 100)] * 3})
    assert res.pool == slashed and slashed - 1 <= res.rewards["good"] <= slashed


def test_simulator__below_quorum__epoch_does_not_count():
    node = poa.SimNode("a", stake=1_000 * WAD)
    sim = poa.Simulator([node])
    res = sim.step(100, reports={"a": [(10, 0, 2_000)] * 2})
    assert node.reliability == poa.DEFAULT_PARAMS.initial_reliability and node.strikes == 0
    assert res.carried == 100 and sim.carry == 100


def test_simulator__committee_minority__epoch_does_not_count():
    node = poa.SimNode("a", stake=1_000 * WAD)
    sim = poa.Simulator([node], reporters=9)
    sim.step(0, reports={"a": [(10, 0, 2_000)] * 4})  # 4 of 9
    assert node.reliability == poa.DEFAULT_PARAMS.initial_reliability and node.strikes == 0
    sim.step(0, reports={"a": [(10, 0, 2_000)] * 5})  # 5 of 9: counts
    assert node.strikes == 1


def test_simulator__slash_capped_per_epoch():
    p = poa.Params(strikes_to_jail=1, slash_bps=5_000, slash_cap_bps=1_000)
    nodes = [poa.SimNode(str(i), stake=1_000 * WAD) for i in range(3)]
    sim = poa.Simulator(nodes, p)
    res = sim.step(0, reports={str(i): [(10, 0, 2_000)] * 3 for i in range(3)})
    assert res.slashed == 300 * WAD and [n.slashed for n in nodes] == [300 * WAD, 0, 0]


def test_rank_nodes__filters_and_orders():
    a = poa.NodeInfo("0xa", services=1 | 8, region="eu-west", reliability=9 * WAD // 10, stake=1, price_per_mu=10)
    b = poa.NodeInfo("0xb", services=1, region="us-east", reliability=95 * WAD // 100, stake=1, price_per_mu=10)
    c = poa.NodeInfo("0xc", services=1 | 8, reliability=WAD, status=poa.Status.JAILED, active=False)
    d = poa.NodeInfo("0xd", services=1 | 8, reliability=WAD, price_per_mu=1_000)
    assert [n.address for _, n in poa.rank_nodes([a, b, c, d], poa.parse_services("tee"))] == ["0xa", "0xd"]
    assert [n.address for _, n in poa.rank_nodes([a, b], 1, region="eu-west")] == ["0xa", "0xb"]
    assert [n.address for _, n in poa.rank_nodes([a, b], 1)] == ["0xb", "0xa"]
    assert [n.address for _, n in poa.rank_nodes([a, b, d], 1, max_price=100)] == ["0xb", "0xa"]


def test_parse_services_and_region():
    assert poa.parse_services("compute, tee") == 9
    with pytest.raises(ValueError):
        poa.parse_services("gpu")
    assert poa.region_bytes("eu-west") == b"eu-west\x00"
    assert poa.region_text(b"eu-west\x00") == "eu-west"


def test_cli_score__json_matches_formula():
    args = [
        "--probes",
        "20",
        "--successes",
        "19",
        "--latency",
        "200",
        "--mu",
        "100",
        "--failed-mu",
        "3",
        "--reliability",
        "0.5",
        "--json",
    ]
    res = CliRunner().invoke(poa_group, ["score", *args])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["quality"], out["reliability"]) == poa.score(20, 19, 200, 100, 3, WAD // 2)


def test_cli_score__mismatched_reports__says_what_to_do():
    res = CliRunner().invoke(
        poa_group, ["score", "--probes", "1", "--probes", "2", "--successes", "1", "--latency", "1"]
    )
    assert res.exit_code != 0 and "once per report" in res.output
