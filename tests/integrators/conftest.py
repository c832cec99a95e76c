"""The whole CodexField system deployed by codexfield.deploy (what a deployer runs), once per module."""

from __future__ import annotations

import pytest

from codexfield.sdk import CodexField


@pytest.fixture(scope="module")
def book(system):
    return system.book


@pytest.fixture(scope="module")
def cf(book, admin):
    return CodexField(book, account=admin)


@pytest.fixture(scope="module")
def cf_usdc(cf):
    """The deployed system's own test USDC (not the session `usdc` of tests/conftest.py)."""
    return cf.test_token("USDC")


@pytest.fixture(scope="module")
def serving_node(cf, node):
    """`node` registered in the deployed AccessStaking (test CDX stake): the meter pays it."""
    stake = cf.staking.params().min_stake
    if cf.token("CDX").balanceOf(node) < stake:
        cf.test_token("CDX").mint(node, stake, sender=node)
    cf.register_node(node)
    return node
