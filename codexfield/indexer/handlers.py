"""Event handlers: one function per (contract, event), applied in (block, log index) order.

Handlers write only through the journaled `Writer`. They are tolerant: an argument a handler
does not know is ignored, a missing optional one takes a neutral value, and an event about an
entity the catalog has not seen (e.g. the contract was indexed from a later block) updates
what it can instead of failing the batch.

Event lists follow DESIGN §3 (CapsuleRegistry §3.2, LicenseManager §3.3, UsageMeter §3.4,
RoyaltyRouter §3.5, AccessStaking §3.6, Reputation §3.7, IdentityRegistry §3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from codexfield import scopes
from codexfield.cid import cid_from_digest
from codexfield.did import did_for as _did_for
from codexfield.indexer import models as m
from codexfield.indexer.journal import Writer

ZERO_ADDRESS = "0x" + "00" * 20
# The same creators mint many capsules: checksumming an address (keccak) once per creator, not
# once per event, is a visible share of a range's handler time.
did_for = lru_cache(maxsize=65536)(_did_for)
BPS = 10_000

C = m.Capsule.__table__
L = m.LineageEdge.__table__
T = m.Terms.__table__
CR = m.Credential.__table__
UC = m.UsageChannel.__table__
CU = m.CapsuleUsage.__table__
NEU = m.NodeEpochUsage.__table__
MC = m.MeterConfig.__table__
RV = m.RoyaltyVault.__table__
RF = m.RoyaltyFlow.__table__
N = m.Node.__table__
ES = m.EpochScore.__table__
RA = m.Rating.__table__
AT = m.Attestation.__table__
D = m.Did.__table__


@dataclass
class Context:
    """What handlers know besides the event: chain, contract addresses, block time, meter epochs."""

    chain_id: int
    addresses: dict[str, str]
    timestamp: int = 0
    epoch_length: int | None = None
    genesis: int = 0
    new_manifests: list[tuple[str, str]] = field(default_factory=list)  # (cid, uri)
    new_capsules: list[str] = field(default_factory=list)

    def capsule(self, token_id: int) -> str:
        return f"eip155:{self.chain_id}/erc721:{self.addresses.get('CapsuleRegistry', ZERO_ADDRESS)}/{int(token_id)}"

    def credential(self, token_id: int) -> str:
        return f"eip155:{self.chain_id}/erc721:{self.addresses.get('LicenseManager', ZERO_ADDRESS)}/{int(token_id)}"

    def terms(self, terms_id: int) -> str:
        return f"eip155:{self.chain_id}:{self.addresses.get('LicenseManager', ZERO_ADDRESS)}/terms/{int(terms_id)}"

    def attestation(self, attestation_id: int) -> str:
        return (
            f"eip155:{self.chain_id}:{self.addresses.get('Reputation', ZERO_ADDRESS)}/attestation/{int(attestation_id)}"
        )

    def account(self, address: str) -> str:
        return f"eip155:{self.chain_id}:{address}"

    def epoch(self) -> int | None:
        if not self.epoch_length or self.timestamp < self.genesis:
            return None
        return (self.timestamp - self.genesis) // self.epoch_length


def hx(b: Any) -> str:
    if isinstance(b, (bytes, bytearray)):
        return "0x" + bytes(b).hex()
    return str(b)


Handler = Callable[[Writer, Context, dict], None]
HANDLERS: dict[tuple[str, str], Handler] = {}


def on(contract: str, event: str):
    def deco(fn: Handler) -> Handler:
        HANDLERS[(contract, event)] = fn
        return fn

    return deco


# --- CapsuleRegistry ------------------------------------------------------------------------


@on("CapsuleRegistry", "CapsuleMinted")
def capsule_minted(w: Writer, ctx: Context, a: dict) -> None:
    cid = ctx.capsule(a["capsule_id"])
    previous = int(a.get("previous_id", 0) or 0)
    previous_id = ctx.capsule(previous) if previous else None
    root_id = cid
    if previous_id:
        prev = w.get(C, id=previous_id)
        root_id = prev["root_id"] if prev else previous_id
        if w.get(C, id=root_id) is not None:
            w.put(C, {"id": root_id}, latest_id=cid)
    content_hash = bytes(a["content_hash"])
    manifest_cid = cid_from_digest(content_hash)
    w.put(
        C,
        {"id": cid},
        chain_id=ctx.chain_id,
        registry_address=ctx.addresses["CapsuleRegistry"],
        token_id=int(a["capsule_id"]),
        kind=int(a.get("kind", 0)),
        content_hash=hx(content_hash),
        cid=manifest_cid,
        creator=a["creator"],
        creator_did=did_for(a["creator"], ctx.chain_id),
        owner=a["creator"],
        version=int(a.get("version", 1)),
        previous_id=previous_id,
        root_id=root_id,
        latest_id=cid if not previous_id else None,
        uri=a.get("uri", "") or "",
        state=1,
        created_block=w.block,
        created_at=ctx.timestamp,
    )
    for i, p in enumerate(a.get("parents") or []):
        parent_id, share = (p[0], p[1]) if isinstance(p, (tuple, list)) else (p["capsule_id"], p["share_bps"])
        w.put(L, {"child_id": cid, "parent_id": ctx.capsule(parent_id)}, position=i, share_bps=int(share))
    ctx.new_manifests.append((manifest_cid, a.get("uri", "") or ""))
    ctx.new_capsules.append(cid)


@on("CapsuleRegistry", "CapsuleStateChanged")
def capsule_state_changed(w: Writer, ctx: Context, a: dict) -> None:
    cid = ctx.capsule(a["capsule_id"])
    if w.get(C, id=cid) is not None:
        w.put(C, {"id": cid}, state=int(a["state"]), state_by=a.get("by"), state_reason=hx(a.get("reason", b"")))


@on("CapsuleRegistry", "Transfer")
def capsule_transfer(w: Writer, ctx: Context, a: dict) -> None:
    cid = ctx.capsule(_token_id(a))
    if _from(a) != ZERO_ADDRESS and w.get(C, id=cid) is not None:
        w.put(C, {"id": cid}, owner=_to(a))


def _token_id(a: dict) -> int:
    return int(a.get("token_id", a.get("tokenId", a.get("_tokenId", 0))))


def _from(a: dict) -> str:
    return a.get("owner", a.get("sender", a.get("_from", a.get("from", ZERO_ADDRESS))))


def _to(a: dict) -> str:
    return a.get("receiver", a.get("_to", a.get("to", ZERO_ADDRESS)))


# --- IdentityRegistry -----------------------------------------------------------------------


@on("IdentityRegistry", "DIDOwnerChanged")
def did_owner_changed(w: Writer, ctx: Context, a: dict) -> None:
    identity = a["identity"]
    row = w.get(D, id=ctx.account(identity))
    w.put(
        D,
        {"id": ctx.account(identity)},
        did=did_for(identity, ctx.chain_id),
        owner=a["owner"],
        changes=(row["changes"] if row else 0) + 1,
    )


@on("IdentityRegistry", "DIDDelegateChanged")
@on("IdentityRegistry", "DIDAttributeChanged")
def did_changed(w: Writer, ctx: Context, a: dict) -> None:
    identity = a["identity"]
    row = w.get(D, id=ctx.account(identity))
    w.put(
        D,
        {"id": ctx.account(identity)},
        did=did_for(identity, ctx.chain_id),
        owner=row["owner"] if row else identity,
        changes=(row["changes"] if row else 0) + 1,
    )


# --- LicenseManager -------------------------------------------------------------------------


@on("LicenseManager", "TermsCreated")
def terms_created(w: Writer, ctx: Context, a: dict) -> None:
    scope = int(a.get("scope", 0))
    w.put(
        T,
        {"id": ctx.terms(a["terms_id"])},
        chain_id=ctx.chain_id,
        terms_id=int(a["terms_id"]),
        capsule_id=ctx.capsule(a["capsule_id"]),
        payment_token=a.get("payment_token", ZERO_ADDRESS),
        price_per_mu=int(a.get("price_per_mu", 0)),
        upfront_fee=int(a.get("upfront_fee", 0)),
        meter=hx(a.get("meter", b"")),
        duration=int(a.get("duration", 0)),
        mu_quota=int(a.get("mu_quota", 0)),
        rate_mu=int(a.get("rate_mu", 0)),
        rate_period=int(a.get("rate_period", 0)),
        scope=scope,
        scope_names="," + ",".join(scopes.names_of(scope)) + ",",
        derivative_share_bps=int(a.get("derivative_share_bps", 0)),
        revocation=int(a.get("revocation", 0)),
        notice_period=int(a.get("notice_period", 0)),
        max_credentials=int(a.get("max_credentials", 0)),
        transferable=bool(a.get("transferable", False)),
        text_hash=hx(a.get("text_hash", b"")),
        active=True,
        credentials_issued=0,
    )


@on("LicenseManager", "TermsActive")
def terms_active(w: Writer, ctx: Context, a: dict) -> None:
    key = ctx.terms(a["terms_id"])
    if w.get(T, id=key) is not None:
        w.put(T, {"id": key}, active=bool(a["active"]))


@on("LicenseManager", "CredentialIssued")
def credential_issued(w: Writer, ctx: Context, a: dict) -> None:
    terms_key = ctx.terms(a["terms_id"])
    w.put(
        CR,
        {"id": ctx.credential(a["credential_id"])},
        chain_id=ctx.chain_id,
        credential_id=int(a["credential_id"]),
        terms_id=terms_key,
        capsule_id=ctx.capsule(a["capsule_id"]),
        holder=a.get("holder", ZERO_ADDRESS),
        expires_at=int(a.get("expires_at", 0)),
    )
    if w.get(T, id=terms_key) is not None:
        w.add(T, {"id": terms_key}, credentials_issued=1)


@on("LicenseManager", "CredentialRevoked")
def credential_revoked(w: Writer, ctx: Context, a: dict) -> None:
    key = ctx.credential(a["credential_id"])
    if w.get(CR, id=key) is not None:
        w.put(
            CR,
            {"id": key},
            revoked_by=a.get("by"),
            revoke_reason=hx(a.get("reason", b"")),
            revoked_effective_at=int(a.get("effective_at", ctx.timestamp)),
        )


@on("LicenseManager", "Transfer")
def credential_transfer(w: Writer, ctx: Context, a: dict) -> None:
    key = ctx.credential(_token_id(a))
    if _from(a) != ZERO_ADDRESS and w.get(CR, id=key) is not None:
        w.put(CR, {"id": key}, holder=_to(a))


# --- UsageMeter -----------------------------------------------------------------------------


@on("UsageMeter", "MeterConfigured")
def meter_configured(w: Writer, ctx: Context, a: dict) -> None:
    """The meter's constructor event: its epochs (the indexer never reads them from the chain)."""
    ctx.epoch_length = int(a["epoch_length"])
    ctx.genesis = int(a["genesis"])
    w.put(
        MC,
        {"chain_id": ctx.chain_id},
        meter=ctx.addresses.get("UsageMeter", ZERO_ADDRESS),
        epoch_length=ctx.epoch_length,
        genesis=ctx.genesis,
        settlement_window=int(a["settlement_window"]),
        withdrawal_thaw=int(a["withdrawal_thaw"]),
    )


@on("UsageMeter", "UsageRecorded")
def usage_recorded(w: Writer, ctx: Context, a: dict) -> None:
    cred = ctx.credential(a["credential_id"])
    capsule = ctx.capsule(a["capsule_id"])
    node = ctx.account(a["node"])
    payer = a.get("payer", "")
    d = {k: int(a.get(f"delta_{k}", 0)) for k in ("mu", "calls", "failures")}
    d["latency_ms"] = int(a.get("delta_latency_ms", 0))
    money = {k: int(a.get(k, 0)) for k in ("license_amount", "node_amount", "protocol_fee")}
    w.add(
        UC,
        {"id": f"{cred}|{node}|{payer}"},
        {"credential_id": cred, "capsule_id": capsule, "node": node, "consumer": payer},
        **d,
        **money,
    )
    w.add(CU, {"capsule_id": capsule}, **d, license_amount=money["license_amount"], node_amount=money["node_amount"])
    epoch = ctx.epoch()
    # As the meter's `node_usage`: only paid vouchers count toward a node's epoch usage.
    if epoch is not None and a.get("paid", True):
        w.add(NEU, {"node": node, "epoch": epoch}, **d)


@on("UsageMeter", "VoucherRejected")
def voucher_rejected(w: Writer, ctx: Context, a: dict) -> None:
    cred = ctx.credential(a["credential_id"])
    node = ctx.account(a["node"])
    payer = a.get("payer", "")
    c = w.get(CR, id=cred)
    w.add(
        UC,
        {"id": f"{cred}|{node}|{payer}"},
        {"credential_id": cred, "capsule_id": (c or {}).get("capsule_id") or "", "node": node, "consumer": payer},
        rejected=1,
    )


# --- RoyaltyRouter --------------------------------------------------------------------------


@on("RoyaltyRouter", "RoyaltyCredited")
def royalty_credited(w: Writer, ctx: Context, a: dict) -> None:
    capsule = ctx.capsule(a["capsule_id"])
    token, amount = a["token"], int(a["amount"])
    w.add(RV, {"capsule_id": capsule, "token": token}, vault=amount, credited_total=amount)
    payer = a.get("payer")
    if payer:
        w.add(RF, {"source": ctx.account(payer), "target": capsule, "token": token}, amount=amount)


@on("RoyaltyRouter", "RoyaltyPropagated")
def royalty_propagated(w: Writer, ctx: Context, a: dict) -> None:
    """One hop: the vault empties into the parents (cumulative rounding, as the router does) and
    the owner's claimable balance. Per-parent amounts are recomputed from the indexed lineage; a
    parent with no parents of its own (indexed, no lineage edge as a child) is paid straight
    into its claimable, as the router does, any other parent into its vault."""
    capsule = ctx.capsule(a["capsule_id"])
    token, amount = a["token"], int(a["amount"])
    to_parents, to_owner = int(a.get("to_parents", 0)), int(a.get("to_owner", amount))
    w.add(RV, {"capsule_id": capsule, "token": token}, vault=-amount, claimable=to_owner, to_parents_total=to_parents)
    edges = w.rows(L.select().where(L.c.child_id == capsule).order_by(L.c.position))
    parent_ids = [e["parent_id"] for e in edges]
    non_roots = {r["child_id"] for r in w.rows(L.select().where(L.c.child_id.in_(parent_ids)))} if parent_ids else set()
    cum = given = 0
    for e in edges:
        cum += int(e["share_bps"])
        due = amount * cum // BPS - given
        if due:
            given += due
            root = e["parent_id"] not in non_roots and w.get(C, id=e["parent_id"]) is not None
            book = {"claimable": due} if root else {"vault": due}
            w.add(RV, {"capsule_id": e["parent_id"], "token": token}, **book, from_children_total=due)
            w.add(RF, {"source": capsule, "target": e["parent_id"], "token": token}, amount=due)
    if given != to_parents and to_parents:
        # Lineage not (fully) indexed: book the remainder on an unknown-parents edge.
        w.add(RF, {"source": capsule, "target": "unknown-parents", "token": token}, amount=max(0, to_parents - given))


@on("RoyaltyRouter", "RoyaltyClaimed")
def royalty_claimed(w: Writer, ctx: Context, a: dict) -> None:
    capsule = ctx.capsule(a["capsule_id"])
    token, amount = a["token"], int(a["amount"])
    w.add(RV, {"capsule_id": capsule, "token": token}, claimable=-amount, claimed_total=amount)
    w.add(RF, {"source": capsule, "target": ctx.account(a.get("to") or a.get("owner")), "token": token}, amount=amount)


# --- AccessStaking --------------------------------------------------------------------------


def _node_fields(a: dict) -> dict:
    out = {}
    for k in ("endpoint", "region", "tee_signer"):
        if k in a:
            v = a[k]
            out[k] = v.rstrip(b"\x00").decode(errors="replace") if isinstance(v, bytes) else v
    for k in ("services", "stake", "price_per_mu", "reliability", "unbonding"):
        if k in a:
            out[k] = int(a[k])
    return out


@on("AccessStaking", "NodeRegistered")
def node_registered(w: Writer, ctx: Context, a: dict) -> None:
    w.put(N, {"id": ctx.account(a["node"])}, chain_id=ctx.chain_id, address=a["node"], status=1, **_node_fields(a))


@on("AccessStaking", "NodeUpdated")
def node_updated(w: Writer, ctx: Context, a: dict) -> None:
    w.put(N, {"id": ctx.account(a["node"])}, chain_id=ctx.chain_id, address=a["node"], **_node_fields(a))


@on("AccessStaking", "StakeChanged")
@on("AccessStaking", "UnbondRequested")
def stake_changed(w: Writer, ctx: Context, a: dict) -> None:
    fields = {k: int(a[k]) for k in ("stake", "unbonding") if k in a}
    if "thaw_end" in a:
        fields["thaw_end"] = int(a["thaw_end"])
    w.put(N, {"id": ctx.account(a["node"])}, chain_id=ctx.chain_id, address=a["node"], **fields)


@on("AccessStaking", "Reported")
def reported(w: Writer, ctx: Context, a: dict) -> None:
    w.add(
        ES,
        {"node": ctx.account(a["node"]), "epoch": int(a["epoch"])},
        reports=1,
        probes=int(a.get("probes", 0)),
        successes=int(a.get("successes", 0)),
        latency_ms_sum=int(a.get("latency_ms", 0)),
    )


@on("AccessStaking", "EpochScored")
def epoch_scored(w: Writer, ctx: Context, a: dict) -> None:
    node = ctx.account(a["node"])
    fields = {k: int(a[k]) for k in ("quality", "reliability", "weight", "strikes") if k in a}
    w.put(ES, {"node": node, "epoch": int(a["epoch"])}, **fields)
    node_fields = {k: fields[k] for k in ("reliability", "strikes") if k in fields}
    w.put(N, {"id": node}, chain_id=ctx.chain_id, address=a["node"], **node_fields)


@on("AccessStaking", "NodeJailed")
def node_jailed(w: Writer, ctx: Context, a: dict) -> None:
    node = ctx.account(a["node"])
    row = w.put(
        N, {"id": node}, chain_id=ctx.chain_id, address=a["node"], status=2, jailed_until=int(a.get("until", 0))
    )
    w.put(N, {"id": node}, slashed_total=int(row.get("slashed_total") or 0) + int(a.get("slashed", 0)))


@on("AccessStaking", "NodeEjected")
def node_ejected(w: Writer, ctx: Context, a: dict) -> None:
    fields = {k: int(a[k]) for k in ("unbonding", "thaw_end") if k in a}
    w.put(N, {"id": ctx.account(a["node"])}, chain_id=ctx.chain_id, address=a["node"], status=3, stake=0, **fields)


@on("AccessStaking", "RewardsClaimed")
def rewards_claimed(w: Writer, ctx: Context, a: dict) -> None:
    node = ctx.account(a["node"])
    row = w.get(N, id=node)
    if row is not None:
        w.put(N, {"id": node}, rewards_claimed=int(row["rewards_claimed"] or 0) + int(a.get("amount", 0)))


# --- Reputation -----------------------------------------------------------------------------


@on("Reputation", "Rated")
def rated(w: Writer, ctx: Context, a: dict) -> None:
    """A Rated for a credential already rated replaces its stars (the contract's update rule)."""
    key = ctx.credential(a["credential_id"])
    row = w.get(RA, credential_id=key)
    w.put(
        RA,
        {"credential_id": key},
        capsule_id=ctx.capsule(a["capsule_id"]),
        rater=a["rater"],
        stars=int(a["stars"]),
        review_hash=hx(a.get("review_hash", b"")),
        updates=(row["updates"] + 1) if row else 0,
    )


@on("Reputation", "Attested")
def attested(w: Writer, ctx: Context, a: dict) -> None:
    w.put(
        AT,
        {"id": ctx.attestation(a["attestation_id"])},
        attestation_id=int(a["attestation_id"]),
        capsule_id=ctx.capsule(a["capsule_id"]),
        auditor=a["auditor"],
        standard=hx(a["standard"]),
        passed=bool(a["passed"]),
        report_hash=hx(a.get("report_hash", b"")),
        valid_until=int(a.get("valid_until", 0)),
        revoked=False,
    )


@on("Reputation", "AttestationRevoked")
def attestation_revoked(w: Writer, ctx: Context, a: dict) -> None:
    key = ctx.attestation(a["attestation_id"])
    if w.get(AT, id=key) is not None:
        w.put(AT, {"id": key}, revoked=True)
