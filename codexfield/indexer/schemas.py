"""Response models of the catalog API (pydantic): the OpenAPI document at /openapi.json is built
from these, so it is the contract of every route.

Conventions: uint256 amounts (prices, fees, stakes, vault balances, scope masks) are decimal
strings; other integers are JSON numbers, except where noted `BigInt` (a JSON number, or a
decimal string when the value is 2^53 or more, beyond what JavaScript holds exactly). Every
error answer is `Error`: `{"error": "<what is wrong and how to fix it>"}`.

Token amounts: next to each raw amount `x` is `x_text`, the amount in token units with the
token's symbol ("0.002 USDC"), or, when the token's symbol and decimals are not known, the raw
integer and the shortened token address ("2000 units of 0x5FbD…0aa3"); the token itself is a
`TokenInfo` (`listed` false: symbol and decimals come from the token contract, not a token
list — show its address). Manifest text (`ManifestCard`) is attacker-controlled: clients must
render it as text, never as HTML.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

BigInt = int | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a column added later is dropped, never a 500


class Error(_Model):
    error: str = Field(description="what is wrong and how to fix it")


class TokenInfo(_Model):
    address: str = Field(description="the token contract (checksummed)")
    symbol: str | None = Field(None, description="null when unknown (then decimals is null too)")
    decimals: int | None = None
    listed: bool = Field(description="in the chain's token list or the deployment's address book")
    source: str | None = Field(
        None, description="list | chain (a one-time eth_call of symbol()/decimals()) | null (unknown)"
    )


class CapsuleSummary(_Model):
    id: str = Field(description="CAIP-19 capsule id")
    chain_id: int
    token_id: int
    kind: int
    creator: str
    creator_did: str
    owner: str
    version: int
    state: int
    cid: str
    created_block: int
    name: str | None = None
    description: str | None = None
    manifest_status: str | None = None
    score: float | None = None
    moderation: str | None = None
    rating_avg: float | None = None
    rating_count: int | None = None
    rating_bayes: float | None = None
    calls: int | None = None
    success_rate: float | None = None
    avg_latency_ms: float | None = None
    audits_valid: int | None = None
    min_price_per_mu: str | None = Field(None, description="lowest price per MU of its active terms (uint256)")
    min_price_text: str | None = Field(None, description='that price in token units, e.g. "0.002 USDC"')


class SearchPage(_Model):
    total: int = Field(description="matches, exact up to 1,000; a lower bound when total_capped")
    total_capped: bool
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last page")
    items: list[CapsuleSummary]


class LineageNode(_Model):
    kind: int | None = None
    token_id: int | None = None
    state: int | None = None
    name: str | None = None
    moderation: str | None = None


class LineageEntry(LineageNode):
    id: str
    depth: int = Field(description="hops from the capsule")


class LineageEdge(_Model):
    child: str
    parent: str
    share_bps: int


class Lineage(_Model):
    id: str
    ancestors: list[LineageEntry]
    descendants: list[LineageEntry]
    edges: list[LineageEdge]
    nodes: dict[str, LineageNode]


class Metric(_Model):
    name: str
    value: float | None = None
    dataset: str | None = None
    split: str | None = None


class ModelCard(_Model):
    """The manifest's `model_card` (schemas/manifest.schema.json), as on a Hugging Face model page."""

    task: str | None = None
    architecture: str | None = None
    parameters: BigInt | None = None
    language: list[str] = []
    base_model: str | None = None
    training_data: list[str] = []
    metrics: list[Metric] = []
    intended_use: str | None = None
    out_of_scope_use: str | None = None
    limitations: str | None = None
    ethical_considerations: str | None = None
    license: str | None = None
    extensions: dict[str, str] = Field({}, description="the card's x-... fields (non-strings as JSON text)")


class DatasetCard(_Model):
    """The manifest's `dataset_card`, as on a Hugging Face dataset page."""

    task: str | None = None
    language: list[str] = []
    source: str | None = Field(None, description="free-text source")
    sources: list[str] = Field([], description="source URIs / capsule refs")
    collection_process: str | None = None
    preprocessing: str | None = None
    records: BigInt | None = Field(None, description="size.records")
    size_bytes: BigInt | None = Field(None, description="size.bytes")
    format: str | None = None
    personal_data: bool | None = None
    sensitive: bool | None = None
    intended_use: str | None = None
    limitations: str | None = None
    license: str | None = None
    extensions: dict[str, str] = {}


class ManifestLicense(_Model):
    spdx: str | None = None
    terms_id: BigInt | None = None
    ldl_uri: str | None = None
    ldl_sha256: str | None = None
    text_sha256: str | None = None


class ManifestCard(_Model):
    version: str | None = Field(None, description="the creator's version label")
    creator: str | None = None
    parents: list[str] = []
    files: int = 0
    size_bytes: BigInt = 0
    license: ManifestLicense | None = None
    model_card: ModelCard | None = None
    dataset_card: DatasetCard | None = None


class ManifestInfo(_Model):
    status: str
    name: str
    description: str
    tags: str
    attempts: int
    error_kind: str | None = None
    last_error: str | None = None
    card: ManifestCard | None = Field(None, description="null until the manifest is fetched and valid")


class ScoreInfo(_Model):
    moderation: str
    score: float
    success_rate: float
    avg_latency_ms: float | None = None
    calls: int
    rating_count: int
    rating_avg: float | None = None
    rating_bayes: float
    audits_valid: int
    min_price_per_mu: str | None = None
    scope_names: str
    chain_id: int | None = None
    kind: int | None = None
    creator: str | None = None
    cid: str | None = None
    created_block: int | None = None
    token_id: int | None = None


class TermsInfo(_Model):
    id: str
    chain_id: BigInt
    terms_id: BigInt
    capsule_id: str
    payment_token: str
    token: TokenInfo
    price_per_mu: str
    price_per_mu_text: str
    upfront_fee: str
    upfront_fee_text: str
    meter: str
    duration: BigInt
    mu_quota: str
    rate_mu: str
    rate_period: BigInt
    scope: str
    scopes: list[str]
    derivative_share_bps: int
    revocation: int
    notice_period: BigInt
    max_credentials: BigInt
    transferable: bool
    text_hash: str
    active: bool
    credentials_issued: int
    ldl: str | None = Field(
        None,
        description="the terms as LDL text (codexfield.ldl.decompile); the licence "
        "name is not on chain, so it is not in the text",
    )


class UsageInfo(_Model):
    mu: str
    calls: int
    failures: int
    latency_ms: int
    license_amount: str
    node_amount: str
    token: TokenInfo | None = Field(None, description="the payment token when all the capsule's terms use one")
    license_amount_text: str
    node_amount_text: str


class RoyaltyInfo(_Model):
    token: str
    token_info: TokenInfo
    vault: str
    claimable: str
    credited_total: str
    from_children_total: str
    to_parents_total: str
    claimed_total: str
    vault_text: str
    claimable_text: str
    credited_total_text: str
    from_children_total_text: str
    to_parents_total_text: str
    claimed_total_text: str


class RoyaltyFlowInfo(_Model):
    source: str
    target: str
    token: str
    token_info: TokenInfo
    amount: str
    amount_text: str


class RatingInfo(_Model):
    sum: int
    count: int
    average: float | None = None


class AttestationInfo(_Model):
    id: str
    attestation_id: BigInt
    capsule_id: str
    auditor: str
    standard: str
    passed: bool
    report_hash: str
    valid_until: BigInt
    revoked: bool


class CapsuleDetail(_Model):
    id: str
    chain_id: int
    registry_address: str
    token_id: int
    kind: int
    content_hash: str
    cid: str
    creator: str
    creator_did: str
    owner: str
    version: int
    previous_id: str | None = None
    root_id: str
    latest_id: str | None = None
    uri: str
    state: int
    state_by: str | None = None
    state_reason: str | None = None
    created_block: int
    created_at: int
    manifest: ManifestInfo | None = None
    score: ScoreInfo | None = None
    terms: list[TermsInfo]
    credentials: int
    usage: UsageInfo
    royalties: list[RoyaltyInfo]
    royalty_flows: list[RoyaltyFlowInfo]
    rating: RatingInfo
    attestations: list[AttestationInfo]
    versions: list[str]
    lineage: Lineage


class EpochInfo(_Model):
    epoch: BigInt
    reports: int
    probes: BigInt
    successes: BigInt
    latency_ms_sum: BigInt
    quality: str | None = None
    reliability: str | None = None
    weight: str | None = None
    strikes: int | None = None


class NodeInfo(_Model):
    id: str
    chain_id: BigInt
    address: str
    endpoint: str
    services: str
    region: str
    tee_signer: str
    price_per_mu: str
    stake: str
    unbonding: str
    thaw_end: BigInt
    status: int
    reliability: str
    strikes: int
    jailed_until: BigInt
    slashed_total: str
    rewards_claimed: str
    epochs: list[EpochInfo]


class NodePage(_Model):
    total: int
    limit: int
    offset: int
    items: list[NodeInfo]


class ChainStatus(_Model):
    chain_id: int
    head: int
    indexed_block: int
    lag: int
    reorgs: int
    updated_at: float
    contracts: dict[str, str]


class RetryItem(_Model):
    cid: str
    status: str
    attempts: int
    next_attempt_at: float
    error_kind: str | None = None
    last_error: str | None = None
    retry_in_s: float | None = None


class Status(_Model):
    chains: list[ChainStatus]
    manifests: dict[str, int] = Field(description="manifest rows per status")
    retry_queue: list[RetryItem]
    capsules: int


class Meta(_Model):
    kinds: dict[str, str] = Field(description="kind number -> name")
    scopes: list[str]
