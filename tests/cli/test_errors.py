"""The rest of issue 14's bad inputs: node down, expired credential, unsupported model dir —
one line, non-zero exit, nothing sent."""

from __future__ import annotations

import pytest

TERMS = """license "Short" for capsule {capsule}
price 0.002 USDC per MU
meter llm.tokens.1k
duration 1 days
allow inference
"""


@pytest.fixture(scope="module")
def short_credential(cli, cf, creator, consumer, tmp_path_factory):
    d = tmp_path_factory.mktemp("err") / "m"
    d.mkdir()
    (d / "w.bin").write_bytes(b"\x07" * 64)
    capsule = cli("capsule", "mint", str(d), "--kind", "model", "--json", account=creator).json["capsule_id"]
    terms = cf.publish_terms(TERMS.format(capsule=capsule), sender=creator)
    return capsule, cf.purchase(terms, sender=consumer)


def invoke_args(capsule, cred, node_url="http://127.0.0.1:9") -> list[str]:
    """`codexfield invoke hello` for `cred` on `capsule` at a node URL nothing listens on."""
    return ["invoke", "hello", "--capsule", str(capsule), "--credential", str(cred), "--node", node_url]


def test_invoke__node_down__one_line(cli, short_credential, consumer, no_tx):
    capsule, cred = short_credential
    with no_tx(consumer):
        r = cli(*invoke_args(capsule, cred), account=consumer, book_flag=False)
    assert r.code == 1 and "the node at http://127.0.0.1:9 does not answer" in r.err and r.err.count("\n") == 1


def test_invoke__expired_credential__refused_before_the_node(cli, chain, short_credential, consumer, no_tx):
    capsule, cred = short_credential
    chain.mine(timestamp=chain.pending_timestamp + 2 * 86400)
    with no_tx(consumer):
        r = cli(*invoke_args(capsule, cred), account=consumer, book_flag=False)
    assert r.code == 1 and f"credential {cred} expired at" in r.err and "license purchase" in r.err


@pytest.mark.parametrize("verify", ["--verify", "--no-verify"])
def test_node_serve__unsupported_model_dir__one_line(cli, short_credential, node, tmp_path, no_tx, verify):
    capsule, _ = short_credential
    (tmp_path / "notes.txt").write_text("not a model")
    with no_tx(node):
        r = cli(
            "node",
            "serve",
            "--capsule",
            str(capsule),
            "--model",
            str(tmp_path),
            "--no-register",
            verify,
            account=node,
            book_flag=False,
        )
    assert r.code != 0 and r.err.count("\n") == 1 and "Traceback" not in r.err, r.err
    assert "declares no runtime" in r.err and "docs/node.md" in r.err  # refused before any chain read
