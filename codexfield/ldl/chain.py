"""Licence terms on chain: publish compiled terms and read them back (thin over ape).

with connected("ethereum:local:foundry") as book:
    manager = contract("LicenseManager", book)
    terms_id = publish_terms(manager, compiled.terms, sender=account)
    terms = read_terms(manager, terms_id)
"""

from __future__ import annotations

from typing import Any

from .terms import Terms
from .tokens import TokenList, load_token_list


class TermsNotFound(LookupError):
    """`LicenseManager.terms(id)` holds no terms (capsule ids start at 1, so capsule 0 = none)."""


def token_list_for(book: Any) -> TokenList:
    """The repository token list of the book's chain, overridden by the address book's tokens
    (the deploy script records the tokens it deployed there)."""
    base = load_token_list(book.chain_id)
    tokens = {t.symbol: {"address": t.address, "decimals": t.decimals} for t in base.by_symbol.values()}
    tokens.update(getattr(book, "tokens", None) or {})
    return TokenList(book.chain_id, tokens)


def publish_terms(manager: Any, terms: Terms, sender: Any) -> int:
    """Call `create_terms(terms)` from `sender`; return the id of the `TermsCreated` event."""
    receipt = manager.create_terms(terms.as_tuple(), sender=sender)
    logs = list(receipt.decode_logs(manager.TermsCreated))
    if not logs:
        raise RuntimeError(f"create_terms succeeded but emitted no TermsCreated event (tx {receipt.txn_hash})")
    return int(logs[0].terms_id)


def read_terms(manager: Any, terms_id: int) -> Terms:
    """`LicenseManager.terms(terms_id)` as `Terms` (TermsNotFound if the id holds none)."""
    from ape.exceptions import ContractLogicError

    try:
        terms = Terms.from_tuple(manager.terms(terms_id))
    except ContractLogicError as exc:
        if "unknown terms" in str(exc.message or exc):
            raise TermsNotFound(f"no licence terms with id {terms_id}") from None
        raise
    if terms.capsule_id == 0:
        raise TermsNotFound(f"no licence terms with id {terms_id}")
    return terms
