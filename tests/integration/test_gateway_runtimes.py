"""Any capsule (issue 15): the runtime is declared in capsule.toml; ONNX (a model the test builds
with scikit-learn + skl2onnx), a Python `module:function` entry point and compute-to-data over a
dataset are served for metered vouchers over real HTTP, with MU per runtime matching the terms'
`meter`; an unsupported directory is one clear error."""

from __future__ import annotations

import csv
import os
import textwrap

import pytest
from eth_utils import keccak

from codexfield import scopes
from codexfield.ldl.terms import Terms
from codexfield.node.client import NodeClient, NodeError
from codexfield.node.gateway import Gateway, GatewayServer
from codexfield.node.runtimes import CapsuleError, load_capsule
from codexfield.node.store import NodeStore
from codexfield.sdk.metering import ConsumerLedger

from operate_helpers import LICENSE_PRICE, NODE_PRICE, settled

UNIT = LICENSE_PRICE + NODE_PRICE


def _onnx_capsule(d):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    import numpy as np
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = LogisticRegression().fit(x, y)
    onx = skl2onnx.convert_sklearn(
        model, initial_types=[("features", FloatTensorType([None, 4]))], options={id(model): {"zipmap": False}}
    )
    d.mkdir()
    (d / "model.onnx").write_bytes(onx.SerializeToString())
    (d / "capsule.toml").write_text(
        'name = "xor-ish"\nkind = "model"\n[runtime]\nkind = "onnx"\nfile = "model.onnx"\nmeter = "dataset.records"\n'
    )
    return d, model


def _python_capsule(d):
    d.mkdir()
    (d / "infer.py").write_text(
        textwrap.dedent("""
        def run(payload):
            words = payload["text"].split()
            return {"words": len(words), "longest": max(words, key=len) if words else ""}
    """)
    )
    (d / "capsule.toml").write_text(
        'name = "word stats"\nkind = "code"\n[runtime]\nkind = "python"\n'
        'entry = "infer:run"\nmeter = "inference.call"\n'
    )
    return d


def _dataset_capsule(d):
    d.mkdir()
    with open(d / "patients.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["age", "region", "cost"])
        for i in range(40):
            w.writerow([20 + i, "north" if i % 2 else "south", 100 + 10 * i])
    (d / "capsule.toml").write_text(
        'name = "costs"\nkind = "dataset"\n[runtime]\nkind = "dataset"\nmeter = "dataset.records"\nmin_group = 5\n'
    )
    return d


@pytest.fixture
def serve(grid, node, admin, licensor, tmp_path):
    """Serve `runtime` as a new capsule whose terms meter `runtime.meter`; a funded consumer."""
    from eth_account import Account

    servers = []

    def _serve(runtime, meter=None):
        c = grid.c
        capsule = int(c["CapsuleRegistry"].mint(2, os.urandom(32), [], [], "", sender=licensor).return_value)
        terms = Terms(
            capsule_id=capsule,
            payment_token=grid.usdc.address,
            price_per_mu=LICENSE_PRICE,
            meter=keccak(text=meter or runtime.meter),
            scope=scopes.mask_of(["inference"]),
            revocation=2,
        )
        terms_id = c["LicenseManager"].create_terms(terms.as_tuple(), sender=licensor).return_value
        acct = Account.create()
        cred = int(c["LicenseManager"].purchase(terms_id, acct.address, 0, sender=admin).return_value)
        grid.usdc.mint(admin, 10**8, sender=admin)
        grid.usdc.approve(c["UsageMeter"], 10**8, sender=admin)
        c["UsageMeter"].deposit(grid.usdc, 10**8, acct.address, sender=admin)
        gw = Gateway(
            capsule_id=capsule,
            model=runtime,
            account=node,
            contracts=c,
            store=NodeStore(tmp_path / f"node-{capsule}.sqlite"),
            price_per_mu=NODE_PRICE,
            max_age_s=3600,
        )
        server = GatewayServer(gw).start(flusher=False)
        servers.append(server)
        client = NodeClient(server.url, ConsumerLedger(tmp_path / f"l-{capsule}.sqlite", grid.domain, acct.key))
        return server, client, cred, acct

    yield _serve
    for s in servers:
        s.stop(flush=False)


def test_onnx_capsule__rows_are_mu__matches_sklearn(serve, grid, node, tmp_path):
    import numpy as np

    d, model = _onnx_capsule(tmp_path / "onnx")
    server, client, cred, acct = serve(load_capsule(d))
    rows = [[1.0, 2.0, 0.0, 0.0], [-3.0, -1.0, 0.5, 0.5], [0.2, -0.1, 1.0, 1.0]]
    out = client.invoke(cred, {"features": rows})
    assert out["mu"] == 3  # dataset.records: one MU per input row
    assert out["result"]["label"] == model.predict(np.asarray(rows, dtype=np.float32)).tolist()
    out = client.invoke(cred, rows[:1])  # a bare list of rows for a single-input model
    assert out["mu"] == 1
    with pytest.raises(NodeError) as e:
        client.invoke(cred, {"wrong": rows})
    assert e.value.code == "bad_input" and "features" in e.value.message
    server.gateway.flush_now()
    assert settled(grid, node, cred, acct.address)[:2] == (4, 2)


def test_python_entry_point_capsule(serve, grid, node, tmp_path):
    server, client, cred, acct = serve(load_capsule(_python_capsule(tmp_path / "py")))
    out = client.invoke(cred, {"text": "compute to data keeps files home"})
    assert out["result"] == {"words": 6, "longest": "compute"} and out["mu"] == 1  # inference.call
    server.gateway.flush_now()
    assert settled(grid, node, cred, acct.address)[:2] == (1, 1)


def test_dataset_compute_to_data__aggregates_only(serve, grid, node, tmp_path):
    server, client, cred, acct = serve(load_capsule(_dataset_capsule(tmp_path / "ds")))
    out = client.invoke(cred, {"where": [["age", ">=", 30]], "aggregate": {"mean": "cost"}, "group_by": "region"})
    assert out["mu"] == 40  # dataset.records: the records the query scans
    groups = out["result"]["groups"]
    assert set(groups) == {"north", "south"} and groups["north"] == pytest.approx(
        sum(100 + 10 * i for i in range(11, 40, 2)) / 15
    )
    small = client.invoke(cred, {"where": [["age", "<", 24]], "aggregate": {"count": "*"}, "group_by": "region"})
    assert small["result"]["groups"] == {} and small["result"]["withheld_groups"] == 2  # < min_group rows
    for bad in ({"aggregate": {"list": "age"}}, {"aggregate": {"sum": "*"}}, {"where": [["nope", "=", 1]]}):
        with pytest.raises(NodeError) as e:
            client.invoke(cred, bad)
        assert e.value.code == "bad_input"
    assert "patients.csv" not in str(out) and "age" not in str(out["result"]["groups"])
    server.gateway.flush_now()
    assert settled(grid, node, cred, acct.address)[:2] == (80, 2)


def test_terms_meter_must_match_the_runtime(serve, tmp_path):
    server, client, cred, _ = serve(load_capsule(_python_capsule(tmp_path / "py2")), meter="llm.tokens")
    with pytest.raises(NodeError) as e:
        client.invoke(cred, {"text": "x"})
    assert e.value.code == "credential_refused" and "meter" in e.value.message
    assert server.gateway.served == 0


def test_unsupported_capsule_dir__one_clear_error(tmp_path):
    empty = tmp_path / "blob"
    empty.mkdir()
    (empty / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(CapsuleError, match=r"declares no runtime: add \[runtime\]"):
        load_capsule(empty)
    (empty / "capsule.toml").write_text('[runtime]\nkind = "tensorflow"\n')
    with pytest.raises(CapsuleError, match="'tensorflow' is not served by this node"):
        load_capsule(empty)
    (empty / "capsule.toml").write_text('[runtime]\nkind = "python"\nentry = "nope:run"\n')
    with pytest.raises(CapsuleError, match="module:function"):
        load_capsule(empty)
    with pytest.raises(CapsuleError, match="not a capsule directory"):
        load_capsule(tmp_path / "missing")


def test_cli_serve__unsupported_capsule__one_line_no_traceback(tmp_path):
    from click.testing import CliRunner

    from codexfield.cli.gateway import node_group

    empty = tmp_path / "blob"
    empty.mkdir()
    out = CliRunner().invoke(
        node_group,
        ["serve", "--capsule", "1", "--model", str(empty), "--account", "TEST::4", "--no-verify", "--no-register"],
    )
    assert out.exit_code != 0 and "declares no runtime" in out.output and "Traceback" not in out.output
