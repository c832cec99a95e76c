"""`codexfield.did.resolve` against the reference resolver (npm ethr-did-resolver 11 through
did-resolver 5, tests/offchain/js/ethr_did_ref.mjs) on the same IdentityRegistry: the whole
resolution result (document, document metadata, resolution metadata) must be identical for a
set of histories, historical versions and the network spellings the reference accepts or
rejects. The messages of errors differ in wording (ours add a hint), so only their codes are
compared.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from eth_account import Account

from codexfield.did import delegate_type, did_for, resolve

REPO = Path(__file__).resolve().parents[2]
REF = REPO / "tests/offchain/js/ethr_did_ref.mjs"
CHAIN = 31337
DAY = 86400

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (REPO / "node_modules" / "ethr-did-resolver").is_dir(),
    reason="needs node and the npm devDependencies (make setup)",
)


@pytest.fixture(scope="module")
def ids(project, admin):
    return admin.deploy(project.IdentityRegistry)


def _reference(uri: str, registry: str, dids: list[str]) -> dict:
    out = subprocess.run(
        ["node", str(REF), uri, registry, str(CHAIN), *dids], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _comparable(result: dict) -> dict:
    meta = dict(result["didResolutionMetadata"])
    if "error" in meta:
        meta.pop("message", None)
    return {**result, "didResolutionMetadata": meta}


def test_resolution__identical_to_ethr_did_resolver(ids, accounts, chain, networks):
    a, b, c, d, e = accounts[1], accounts[2], accounts[3], accounts[4], accounts[6]
    attr = lambda text: text.encode().ljust(32, b"\0")  # noqa: E731
    # a: delegates of every kind, one revoked, one expiring now; keys and a service; an owner change
    ids.addDelegate(a, delegate_type("sigAuth"), b, DAY, sender=a)
    ids.addDelegate(a, delegate_type("veriKey"), c, DAY, sender=a)
    ids.addDelegate(a, delegate_type("sigAuth"), d, DAY, sender=a)
    ids.revokeDelegate(a, delegate_type("sigAuth"), d, sender=a)
    ids.addDelegate(a, delegate_type("veriKey"), e, 1, sender=a)  # expired by the time both resolve
    ids.setAttribute(a, attr("did/pub/Secp256k1/veriKey/hex"), bytes.fromhex("02" + "11" * 32), DAY, sender=a)
    ids.setAttribute(a, attr("did/pub/Ed25519/veriKey/base64"), b"\x22" * 32, DAY, sender=a)
    ids.setAttribute(a, attr("did/pub/X25519/enc/base64"), b"\x33" * 32, DAY, sender=a)
    ids.setAttribute(a, attr("did/svc/HubService"), b"https://hub.example/a", DAY, sender=a)
    middle = chain.blocks.height
    ids.changeOwner(a, b, sender=a)
    # b: deactivated (owner set to 0x0)
    ids.changeOwner(c, "0x" + "00" * 20, sender=c)
    time.sleep(2)
    chain.mine()
    key = Account.create()
    from eth_keys import keys

    pub = "0x" + keys.PrivateKey(key.key).public_key.to_compressed_bytes().hex()
    dids = [
        did_for(a.address, CHAIN),
        f"{did_for(a.address, CHAIN)}?versionId={middle}",
        did_for(c.address, CHAIN),
        did_for(d.address, CHAIN),  # never changed: controller only
        f"did:ethr:0x7a69:{pub}",  # a public-key DID
        f"did:ethr:{a.address}",  # no network: mainnet, not configured
        f"did:ethr:31337:{a.address}",  # decimal chain id: not a network name
        f"did:ethr:0x7A69:{a.address}",  # upper-case hex: not a network name
        "did:ethr:0x7a69:0x1234",  # malformed
    ]
    reference = _reference(networks.provider.uri, str(ids.address), dids)
    codes = [reference[x]["didResolutionMetadata"].get("error") for x in dids]
    assert codes == [None] * 5 + ["unknownNetwork"] * 3 + ["invalidDid"]
    doc = reference[dids[0]]["didDocument"]
    assert len(doc["verificationMethod"]) == 6 and len(doc["service"]) == 1  # controller, b, c, 3 keys
    assert reference[dids[2]]["didDocumentMetadata"] == {
        **reference[dids[2]]["didDocumentMetadata"],
        "deactivated": True,
    }
    for did in dids:
        ours = json.loads(json.dumps(resolve(did, ids, CHAIN)))
        assert _comparable(ours) == _comparable(reference[did]), did
