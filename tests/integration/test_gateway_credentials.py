"""The consumer who loses or moves its credential after being served (issue 15, on the node):
the gateway's credential cache follows the LicenseManager's events and the credential's own
end time, not a timer alone.

- Revoked by an arbiter after a call: the watcher's next poll drops the cached credential and
  the next call is refused (`403 credential_refused`), never served unpaid; the call served
  before the revocation is settled and paid.
- Transferred after a call: the old holder is refused at once, the new holder is served on its
  own channel and escrow; the old holder's served call stays payable from its escrow.
- Revoked with notice: no event marks the moment the revocation takes effect; the cached
  credential carries that time, and a voucher dated at or after it is refused.

Each gateway here keeps credentials for an hour (`credential_ttl_s=3600`): a timed cache
alone would serve all these calls, and the meter would then refuse to pay for them.
"""

from __future__ import annotations

import pytest
from ape import accounts as ape_accounts
from eth_account import Account
from eth_utils import keccak

from codexfield.node.client import NodeClient, NodeError
from codexfield.node.model import METER_NAME
from codexfield.sdk.metering import ConsumerLedger

from operate_helpers import LICENSE_PRICE, NODE_PRICE, deposit, fresh_consumer, settled
from support.terms import terms_tuple

TEXT = "my parcel is late, where is it?"  # 1 MU
UNIT = LICENSE_PRICE + NODE_PRICE
HOUR = 3_600


def _escrow(grid, who) -> int:
    return int(grid.c["UsageMeter"].escrow(who, grid.usdc.address))


def _terms(grid, licensor, **kw) -> int:
    """Terms on the grid's capsule, priced and metered as the grid's own (`kw`: what differs)."""
    t = terms_tuple(grid.capsule, grid.usdc, price=LICENSE_PRICE, meter=keccak(text=METER_NAME), **kw)
    return int(grid.c["LicenseManager"].create_terms(t, sender=licensor).return_value)


def _wallet(admin):
    """A funded ape test account (it sends its own transfer)."""
    w = ape_accounts.test_accounts.generate_test_account()
    admin.transfer(w, 10**18)
    return w


def test_revoked_after_being_served__next_call_refused__served_call_paid(
    start_gateway, grid, node, admin, chain, tmp_path
):
    lm = grid.c["LicenseManager"]
    acct, cred = fresh_consumer(grid, admin, 10 * UNIT)  # the grid's terms: an arbiter revokes at once
    server = start_gateway(credential_ttl_s=HOUR)
    gw = server.gateway
    gw.watch_once()  # the watcher's first poll (its thread does this every 0.25 s; here by hand)
    client = NodeClient(server.url, ConsumerLedger(tmp_path / "c.sqlite", grid.domain, acct.key))
    client.invoke(cred, TEXT)
    assert gw.credential(cred, client._terms[cred]["purpose"], gw.chain_time()).ok

    # An arbiter's revocation takes effect at its block's second: the call above is dated earlier.
    chain.pending_timestamp = int(chain.blocks.head.timestamp) + 1
    lm.revoke(cred, b"\x01" * 32, sender=admin)  # admin holds ARBITER_ROLE in the test deployment
    assert gw.watch_once() >= 1  # CredentialRevoked names the credential: its cache entry is dropped
    with pytest.raises(NodeError) as e:
        client.invoke(cred, "reset my password")
    assert (e.value.status, e.value.code) == (403, "credential_refused") and gw.served == 1

    assert gw.flush_now() == 1  # the call served before the revocation is paid in full
    assert settled(grid, node.address, cred, acct.address)[:2] == (1, 1)
    assert _escrow(grid, acct.address) == 9 * UNIT  # charged for the one answered call only


def test_transferred_after_being_served__old_holder_refused__new_holder_served(
    start_gateway, grid, node, admin, licensor, chain, tmp_path
):
    lm = grid.c["LicenseManager"]
    tid = _terms(grid, licensor, transferable=True, revocation=0)
    old, new = _wallet(admin), _wallet(admin)
    cred = int(lm.purchase(tid, old, 0, sender=admin).return_value)
    for w in (old, new):
        deposit(grid, admin, w.address, 10 * UNIT)
    server = start_gateway(credential_ttl_s=HOUR)
    gw = server.gateway
    gw.watch_once()
    before = NodeClient(server.url, ConsumerLedger(tmp_path / "old.sqlite", grid.domain, old.private_key))
    before.invoke(cred, TEXT)

    # The meter's rule: usage dated at or after the transfer's second is the new holder's. The
    # call above was dated at the head's time; the transfer comes a second later.
    chain.pending_timestamp = int(chain.blocks.head.timestamp) + 1
    lm.transferFrom(old, new, cred, sender=old)
    assert gw.watch_once() >= 1  # Transfer names the credential
    with pytest.raises(NodeError) as e:
        before.invoke(cred, "reset my password")
    assert (e.value.status, e.value.code) == (403, "credential_refused")
    after = NodeClient(server.url, ConsumerLedger(tmp_path / "new.sqlite", grid.domain, new.private_key))
    assert after.invoke(cred, TEXT)["cumulative"]["cumulative_calls"] == "1"  # its own channel
    assert gw.served == 2

    assert gw.flush_now() == 2
    assert settled(grid, node.address, cred, old.address)[:2] == (1, 1)  # served before the move: paid
    assert settled(grid, node.address, cred, new.address)[:2] == (1, 1)
    assert _escrow(grid, old.address) == _escrow(grid, new.address) == 9 * UNIT


def test_revoked_with_notice__refused_from_the_effective_time__no_event_needed(
    start_gateway, grid, node, admin, licensor, chain, tmp_path
):
    lm = grid.c["LicenseManager"]
    notice = 600
    tid = _terms(grid, licensor, revocation=1, notice_period=notice)  # LICENSOR_AT_WILL, after notice
    acct = Account.create()
    cred = int(lm.purchase(tid, acct.address, 0, sender=admin).return_value)
    deposit(grid, admin, acct.address, 10 * UNIT)
    server = start_gateway(credential_ttl_s=HOUR)
    gw = server.gateway
    gw.watch_once()
    ledger = ConsumerLedger(tmp_path / "c.sqlite", grid.domain, acct.key)
    NodeClient(server.url, ledger).invoke(cred, TEXT)

    lm.revoke(cred, b"\x02" * 32, sender=licensor)
    effective = int(lm.credential(cred).revoked_at)
    assert effective == int(chain.blocks.head.timestamp) + notice
    gw.watch_once()  # the revocation's event: read again, valid until `effective`
    out = NodeClient(server.url, ledger).invoke(cred, TEXT)  # inside the notice period: served
    assert out["cumulative"]["cumulative_calls"] == "2"

    chain.mine(timestamp=effective + 1)  # the revocation takes effect: no event marks it
    gw.watch_once()  # the head's time only
    with pytest.raises(NodeError) as e:
        NodeClient(server.url, ledger).invoke(cred, "reset my password")
    assert (e.value.status, e.value.code) == (403, "credential_refused") and gw.served == 2
    assert "revoked or expired" in str(e.value)

    assert gw.flush_now() == 1
    assert settled(grid, node.address, cred, acct.address)[:2] == (2, 2)  # both served calls paid
    assert _escrow(grid, acct.address) == 8 * UNIT
