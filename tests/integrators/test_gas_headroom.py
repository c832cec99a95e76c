"""A settlement estimated in one usage epoch and mined in the next, as an integrator's SDK sends it.

On an RPC-URL network (as examples/quickstart.py and the installed wheel connect) ape's gas limit
is the bare estimate, taken at the pending block. A batch mined after the epoch boundary books the
node's usage into a fresh `usage[node][epoch]` slot (+17,100 gas over the warm slot it was
estimated with) and ran out of gas (`EVM error MemoryOOG`, the CI failure of stop 22). The chain
here mines by hand (`evm_setAutomine false`, then one block past the boundary) so the estimate
and the execution fall on both sides of it: the bare estimate fails, the SDK's transaction lands.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

from codexfield import deployments
from codexfield.sdk import CodexField

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples" / "quickstart.py")
quickstart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quickstart)


def _to_end_of_epoch(cf, provider) -> int:
    """Mine a block 300 s before an epoch boundary at least one whole epoch ahead; returns it."""
    length, genesis = int(cf.meter.epoch_length()), int(cf.meter.genesis())
    now = int(provider.web3.eth.get_block("latest")["timestamp"])
    boundary = genesis + ((now - genesis) // length + 2) * length
    _mine_at(provider, boundary - 300)
    return boundary


def _pending(provider, address: str) -> bool:
    web3 = provider.web3
    return web3.eth.get_transaction_count(address, "pending") > web3.eth.get_transaction_count(address, "latest")


def _mine_at(provider, timestamp: int) -> None:
    provider.make_request("evm_mine", [timestamp])


def test_ingest__estimated_before_the_epoch_boundary_and_mined_after__lands(
    cf, creator, consumer, node, tmp_path, networks
):
    out = quickstart.run(cf, creator, consumer, node, tmp_path, say=lambda _m: None)  # a serving node, a channel
    cred, uri = out["credential"], networks.provider.uri
    mu = 500

    def warm_then_sign(sdk: CodexField):
        """Book usage in this epoch (the slot the estimate sees warm), then the next voucher."""
        nonlocal mu
        provider.make_request("evm_setAutomine", [True])
        boundary = _to_end_of_epoch(cf, provider)
        mu += 10
        warm = sdk.voucher(cred, node, mu=mu, calls=6 + mu, latency_ms=300, node_price_per_mu=1000)
        assert sdk.ingest([(warm, sdk.sign(warm, consumer))], sender=node).applied == 1
        mu += 10
        v = sdk.voucher(cred, node, mu=mu, calls=7 + mu, latency_ms=350, node_price_per_mu=1000)
        provider.make_request("evm_setAutomine", [False])
        return boundary, v, sdk.sign(v, consumer)

    def bare_estimate(v, sig) -> int:
        return provider.estimate_gas_cost(sdk.meter.ingest.as_transaction([v.as_tuple()], [sig], sender=node))

    with networks.parse_network_choice(uri) as provider:  # the integrator's connection: a URL
        sdk = CodexField(cf.book)
        try:
            # The bare estimate, as ape sends it on a network with no headroom: out of gas.
            boundary, v, sig = warm_then_sign(sdk)
            bare = bare_estimate(v, sig)
            txn = sdk.meter.ingest.as_transaction([v.as_tuple()], [sig], sender=node, gas_limit=bare)
            txn = node.sign_transaction(txn)
            tx_hash = provider.web3.eth.send_raw_transaction(txn.serialize_transaction())
            _mine_at(provider, boundary + 1)
            failed = provider.web3.eth.get_transaction_receipt(tx_hash)
            assert failed["status"] == 0 and failed["gasUsed"] > 0.99 * bare  # out of gas, as in CI

            # The SDK's ingest, estimated and mined on the same sides of the next boundary: lands.
            boundary, v, sig = warm_then_sign(sdk)
            bare = bare_estimate(v, sig)
            result: dict = {}

            def send():
                try:
                    result["ok"] = sdk.ingest([(v, sig)], sender=node)
                except Exception as exc:  # noqa: BLE001 - asserted below
                    result["error"] = exc

            sender = threading.Thread(target=send)
            sender.start()
            deadline = time.monotonic() + 60
            while not _pending(provider, node.address) and sender.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            _mine_at(provider, boundary + 1)
            sender.join(60)
            assert "error" not in result, result.get("error")
            receipt = result["ok"].receipt
            assert receipt.status == 1 and result["ok"].applied == 1
            assert receipt.gas_used > bare  # the bare estimate would have run out, as above
            assert receipt.gas_limit == int(bare * deployments.GAS_HEADROOM)
            assert int(provider.web3.eth.get_block(receipt.block_number)["timestamp"]) == boundary + 1
        finally:
            provider.make_request("evm_setAutomine", [True])
    assert cf.settled(cred, node)[0] == mu
