"""A few-line Python API over a CodexField deployment, for integrators.

    from codexfield.sdk import CodexField

    cf = CodexField("ethereum:local:foundry", account=creator)   # or an AddressBook / book.json
    capsule = cf.mint("./my-dataset", kind="dataset")            # pack + mint (content_hash = manifest SHA-256)
    terms = cf.publish_terms(f"license \\"metered\\" for capsule {capsule}\\nprice 0.002 USDC per MU\\n"
                             "allow inference", sender=creator)
    cred = cf.purchase(terms, sender=consumer)                   # approves and caps the upfront fee
    cf.deposit("USDC", 10**6, sender=consumer)                   # escrow for metered usage
    v = cf.voucher(cred, node, mu=100, calls=3)                  # cumulative counters of the channel
    sig = cf.sign(v, consumer)                                   # EIP-712, low-s (codexfield.sdk.metering)
    result = cf.ingest([(v, sig)], sender=node)                  # -> IngestResult(applied, rejected)
    cf.propagate(capsule, "USDC"); cf.claim(capsule, "USDC", sender=creator)

Every method that sends a transaction takes `sender=` (an ape account) and falls back to the
`account` given to the constructor. Amounts are raw token units (`cf.units("USDC", "1.5")`
converts). Contracts are ape instances with the ABIs ape compiled (`cf.registry`, `cf.licenses`,
`cf.router`, `cf.meter`, `cf.staking`, `cf.identity`), so anything not wrapped here is one
attribute away.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from codexfield import deployments, manifest
from codexfield.deployments import AddressBook, AddressBookError, gas_headroom
from codexfield.sdk.metering import Domain, Voucher, sign_voucher
from codexfield.system import NAMES, System


@dataclass(frozen=True)
class IngestResult:
    """What one `ingest` did: how many vouchers applied, and (credential, node, reason) per rejection."""

    applied: int
    rejected: list[tuple[int, str, int]]
    receipt: Any


def _load_book(source: str | os.PathLike[str] | AddressBook | None) -> AddressBook:
    if isinstance(source, AddressBook):
        return source
    if source is None:
        return deployments.current()
    text = str(source)
    if text.endswith(".json") or os.path.sep in text:
        return deployments.load_file(text)
    parts = text.split(":")
    if len(parts) < 2:
        raise AddressBookError(f"{text!r} is neither a network ('ethereum:local') nor an address book path")
    return deployments.load(parts[0], parts[1])


def _private_key(signer: Any) -> Any:
    for attr in ("private_key", "key"):
        key = getattr(signer, attr, None)
        if key is not None:
            return key
    return signer


class CodexField:
    """The whole system behind one object (see the module docstring)."""

    def __init__(self, network_or_book: str | os.PathLike[str] | AddressBook | None = None, *, account: Any = None):
        self.book = _load_book(network_or_book)
        self.system = System(self.book)
        self.account = account
        self._domain: Domain | None = None

    # -- contracts and tokens -------------------------------------------------------------

    def contract(self, name: str):
        """The ape instance of contract `name` (e.g. "UsageMeter") at the book's address."""
        return self.system.contract(name)

    def __getattr__(self, attr: str):
        if attr in NAMES:  # cf.meter, cf.registry, ...: codexfield.system's one map
            return self.system.contract(NAMES[attr])
        raise AttributeError(attr)

    def token_address(self, token: str) -> str:
        """A token symbol from the book (`"USDC"`) or an address, as an address."""
        return token if str(token).startswith("0x") else self.book.token(token)["address"]

    def token(self, token: str):
        """An ERC-20 instance (standard ERC-20 ABI; `test_token` for the local test tokens' mint)."""
        from codexfield import contracts

        return contracts.erc20(self.token_address(token))

    def test_token(self, token: str):
        """A local chain's test token (MockERC20, with an open `mint`), as deploy.py creates them."""
        from codexfield import contracts

        return contracts.at("MockERC20", self.token_address(token))

    def units(self, token: str, amount: str | int | float | Decimal) -> int:
        """`amount` whole tokens in raw units, by the book's decimals (`units("USDC", "1.5")` = 1_500_000)."""
        decimals = self.book.token(token)["decimals"]
        return int(Decimal(str(amount)) * (Decimal(10) ** decimals))

    def _sender(self, sender: Any) -> Any:
        """The account a transaction is sent from; every sending method asks it first, so the
        connected network gets its gas headroom (codexfield.deployments.gas_headroom) here."""
        who = sender or self.account
        if who is None:
            raise ValueError("no sender: pass sender=<ape account> or CodexField(..., account=...)")
        gas_headroom()
        return who

    def _approve(self, token: str, spender: Any, amount: int, sender: Any) -> None:
        if amount <= 0:
            return
        erc20 = self.token(token)
        if erc20.allowance(sender, spender) < amount:
            erc20.approve(spender, amount, sender=sender)

    # -- capsules -------------------------------------------------------------------------

    def pack(self, directory: str | os.PathLike[str], **kwargs: Any) -> manifest.PackResult:
        """`codexfield pack`: the manifest of `directory` (kind=..., name=..., see manifest.pack)."""
        return manifest.pack(directory, progress=False, **kwargs)

    def mint(
        self,
        source: str | os.PathLike[str] | manifest.PackResult | bytes,
        *,
        kind: str | int | None = None,
        parents: Sequence[tuple[int, int]] = (),
        parent_credentials: Sequence[int] = (),
        uri: str = "",
        sender: Any = None,
        **pack_kwargs: Any,
    ) -> int:
        """Mint a capsule from a directory (packed here), a PackResult or a raw 32-byte hash;
        `parents` are (capsule_id, share_bps). Returns the capsule id."""
        if isinstance(source, bytes):
            content_hash, kind_id = source, manifest.kind_id(kind or 1)
        else:
            packed = source if isinstance(source, manifest.PackResult) else self.pack(source, kind=kind, **pack_kwargs)
            content_hash, kind_id = packed.content_hash, packed.kind_id
        receipt = self.registry.mint(
            kind_id, content_hash, list(parents), list(parent_credentials), uri, sender=self._sender(sender)
        )
        return int(receipt.return_value)

    def capsule(self, capsule_id: int) -> dict[str, Any]:
        """The capsule's record, parents, owner, state and tokenURI."""
        c = self.registry.capsule(capsule_id)
        return {
            "kind": c.kind,
            "content_hash": bytes(c.content_hash),
            "creator": c.creator,
            "created_at": c.created_at,
            "version": c.version,
            "previous_id": c.previous_id,
            "parents": [(p.capsule_id, p.share_bps) for p in self.registry.parents(capsule_id)],
            "owner": self.registry.ownerOf(capsule_id),
            "state": self.registry.state(capsule_id),
            "uri": self.registry.tokenURI(capsule_id),
        }

    # -- licenses -------------------------------------------------------------------------

    def compile_terms(self, ldl_text: str, capsule_id: int | None = None):
        """Compile LDL text against this chain's tokens (see codexfield.ldl)."""
        from codexfield.ldl import compile_ldl
        from codexfield.ldl.chain import token_list_for

        return compile_ldl(
            ldl_text, chain_id=self.book.chain_id, token_list=token_list_for(self.book), capsule_id=capsule_id
        )

    def publish_terms(self, ldl_text: str, capsule_id: int | None = None, *, sender: Any = None) -> int:
        """Compile LDL text and `create_terms` it (the capsule owner sends). Returns the terms id."""
        from codexfield.ldl.chain import publish_terms

        compiled = self.compile_terms(ldl_text, capsule_id)
        return publish_terms(self.licenses, compiled.terms, sender=self._sender(sender))

    def purchase(self, terms_id: int, holder: Any = None, *, max_upfront: int | None = None, sender: Any = None) -> int:
        """Buy a credential for `holder` (default: the sender). `max_upfront` defaults to the
        terms' current upfront fee, so a price change between read and send reverts."""
        who = self._sender(sender)
        terms = self.licenses.terms(terms_id)
        fee = int(terms.upfront_fee)
        max_upfront = fee if max_upfront is None else max_upfront
        self._approve(terms.payment_token, self.licenses, min(fee, max_upfront), who)
        receipt = self.licenses.purchase(terms_id, holder or who, max_upfront, sender=who)
        return int(receipt.return_value)

    def credential(self, credential_id: int) -> dict[str, Any]:
        """The credential's record plus its terms id's capsule."""
        c = self.licenses.credential(credential_id)
        return {
            "terms_id": c.terms_id,
            "holder": c.holder,
            "issued_at": c.issued_at,
            "expires_at": c.expires_at,
            "mu_used": c.mu_used,
            "revoked_at": c.revoked_at,
            "capsule_id": self.licenses.terms(c.terms_id).capsule_id if c.terms_id else 0,
        }

    def authorize(self, credential_id: int, user: Any, purpose: int, at: int | None = None) -> bool:
        """Whether `user` may use the credential for `purpose` at `at` (default: now)."""
        from ape import chain

        return bool(
            self.licenses.authorize(credential_id, user, purpose, chain.pending_timestamp if at is None else at)
        )

    # -- metering -------------------------------------------------------------------------

    @property
    def domain(self) -> Domain:
        """The meter's EIP-712 domain (read once from `eip712Domain()`)."""
        if self._domain is None:
            self._domain = Domain.of(self.meter)
        return self._domain

    def deposit(self, token: str, amount: int, beneficiary: Any = None, *, sender: Any = None) -> None:
        """Approve and deposit `amount` into the escrow of `beneficiary` (default: the sender)."""
        who = self._sender(sender)
        self._approve(token, self.meter, amount, who)
        self.meter.deposit(self.token_address(token), amount, beneficiary or who, sender=who)

    def escrow(self, who: Any, token: str) -> int:
        return int(self.meter.escrow(who, self.token_address(token)))

    def voucher(
        self,
        credential_id: int,
        node: Any,
        mu: int,
        calls: int = 1,
        failures: int = 0,
        latency_ms: int = 0,
        *,
        payer: Any = None,
        purpose: int | None = None,
        node_price_per_mu: int = 0,
        issued_at: int | None = None,
        deadline: int | None = None,
    ) -> Voucher:
        """A cumulative voucher for the (credential, node, payer) channel; `payer` defaults to the
        credential's holder, `purpose` to `inference`, `issued_at` to the chain's current time,
        `deadline` to one day after `issued_at`."""
        from ape import chain

        from codexfield import scopes

        payer = (
            str(getattr(payer, "address", payer)) if payer is not None else str(self.licenses.ownerOf(credential_id))
        )
        at = int(issued_at if issued_at is not None else max(chain.blocks.head.timestamp, chain.pending_timestamp - 1))
        return Voucher(
            credential_id=int(credential_id),
            node=str(getattr(node, "address", node)),
            payer=payer,
            purpose=scopes.mask_of(["inference"]) if purpose is None else int(purpose),
            cumulative_mu=int(mu),
            cumulative_calls=int(calls),
            cumulative_failures=int(failures),
            cumulative_latency_ms=int(latency_ms),
            node_price_per_mu=int(node_price_per_mu),
            issued_at=at,
            deadline=int(deadline if deadline is not None else at + 86400),
        )

    def register_node(
        self,
        node: Any,
        *,
        endpoint: str = "http://127.0.0.1",
        services: int = 1,
        region: bytes = b"local",
        stake: int | None = None,
    ) -> bool:
        """Register `node` in AccessStaking with `stake` (default `min_stake`) of the stake token it
        already holds: the meter pays only nodes that serve. False if it was registered already."""
        node = self._sender(node)
        if int(self.staking.node(node).status) != 0:
            return False
        amount = int(self.staking.params().min_stake) if stake is None else int(stake)
        from codexfield import contracts

        erc20 = contracts.erc20(self.staking.stake_token())
        if erc20.allowance(node, self.staking) < amount:
            erc20.approve(self.staking, amount, sender=node)
        self.staking.register_node(endpoint, services, region.ljust(8, b"\0"), "0x" + "00" * 20, amount, sender=node)
        return True

    def sign(self, voucher: Voucher, signer: Any) -> bytes:
        """The consumer's EIP-712 signature (an ape test account, an eth-account key or raw key bytes)."""
        return sign_voucher(voucher, self.domain, _private_key(signer))

    def ingest(self, signed: Iterable[tuple[Voucher, bytes]], *, sender: Any = None) -> IngestResult:
        """Submit (voucher, signature) pairs in one batch (≤ 64)."""
        pairs = list(signed)
        receipt = self.meter.ingest(
            [v.as_tuple() for v, _ in pairs], [s for _, s in pairs], sender=self._sender(sender)
        )
        rejected = [
            (int(e.credential_id), e.node, int(e.reason)) for e in receipt.decode_logs(self.meter.VoucherRejected)
        ]
        return IngestResult(applied=int(receipt.return_value), rejected=rejected, receipt=receipt)

    def settled(self, credential_id: int, node: Any, payer: Any = None) -> tuple[int, int, int, int]:
        """The channel's last settled cumulative (mu, calls, failures, latency_ms); `payer`
        defaults to the credential's holder."""
        payer = payer if payer is not None else self.licenses.ownerOf(credential_id)
        return tuple(int(x) for x in self.meter.settled(credential_id, node, payer))[:4]

    # -- royalties ------------------------------------------------------------------------

    def pay(self, capsule_id: int, token: str, amount: int, *, sender: Any = None) -> None:
        """External revenue (a tip, a sale) into the capsule's vault."""
        who = self._sender(sender)
        self._approve(token, self.router, amount, who)
        self.router.pay(capsule_id, self.token_address(token), amount, sender=who)

    def propagate(self, capsule_ids: int | Sequence[int], token: str, *, sender: Any = None) -> None:
        """Move one hop of royalties for each capsule (list them leaf first to settle a graph)."""
        ids = [capsule_ids] if isinstance(capsule_ids, int) else list(capsule_ids)
        self.router.propagate_many(ids, self.token_address(token), sender=self._sender(sender))

    def claim(self, capsule_id: int, token: str, to: Any = None, *, sender: Any = None) -> int:
        """The capsule owner claims its royalties (propagating first). Returns the amount."""
        who = self._sender(sender)
        receipt = self.router.claim(capsule_id, self.token_address(token), to or who, sender=who)
        return int(receipt.return_value)

    def royalties(self, capsule_id: int, token: str) -> dict[str, int]:
        """The capsule's vault (not yet propagated) and claimable balance."""
        t = self.token_address(token)
        return {"vault": int(self.router.vault(capsule_id, t)), "claimable": int(self.router.claimable(capsule_id, t))}
