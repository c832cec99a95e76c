"""The deployed CodexField system as a typed object: every contract and test token by name.

    system = deploy(admin, reporters=[reporter])          # codexfield.deploy.deploy_system, no book file
    system.licenses.create_terms(terms_tuple(capsule, system.usdc), sender=licensor)

`System.from_book(book, project)` wraps an address book that `deploy_system` wrote; the root
`system` fixture (tests/conftest.py) is one per module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from codexfield.deploy import DeployConfig, deploy_system
from codexfield.deployments import AddressBook
from codexfield.sdk.client import NAMES
from codexfield.sdk.metering import Domain


@dataclass(frozen=True)
class System:
    """The contracts `deploy_system` deployed and wired, and its test tokens (ape instances)."""

    book: AddressBook
    identity: Any
    registry: Any
    licenses: Any
    router: Any
    meter: Any
    staking: Any
    reputation: Any
    usdc: Any
    cdx: Any

    @classmethod
    def from_book(cls, book: AddressBook, project: Any) -> System:
        def at(name: str) -> Any:
            return getattr(project, name).at(book.contracts[name])

        named = {attr: at(name) for attr, name in NAMES.items()}
        tokens = {s.lower(): project.MockERC20.at(book.tokens[s]["address"]) for s in ("USDC", "CDX")}
        return cls(book=book, reputation=at("Reputation"), **named, **tokens)

    @property
    def contracts(self) -> dict[str, Any]:
        """By contract name (`{"UsageMeter": meter, ...}`), as the gateway and keepers take them."""
        named = {name: getattr(self, attr) for attr, name in NAMES.items()}
        return {**named, "Reputation": self.reputation}

    @property
    def domain(self) -> Domain:
        """The meter's EIP-712 domain (what vouchers are signed under)."""
        return Domain.of(self.meter)


def deploy(admin: Any, *, reporters: Iterable[Any] = (), save: bool = False, **config: Any) -> System:
    """`deploy_system` with test tokens and the given reporters, silently; the book is kept in
    memory unless `save` (then under deployments.DEPLOYMENTS_DIR)."""
    from ape import project

    cfg = DeployConfig(test_tokens=True, reporters=[str(getattr(r, "address", r)) for r in reporters], **config)
    return System.from_book(deploy_system(admin, cfg, save=save, log=lambda _msg: None), project)


def register_node(staking: Any, stake_token: Any, who: Any, amount: int | None = None) -> int:
    """Mint `amount` (default: the minimum stake) of the MockERC20 `stake_token` to `who` and
    register it in `staking` (services: compute, region "local", no TEE key): it then `serves`."""
    amount = int(staking.params().min_stake) if amount is None else amount
    stake_token.mint(who, amount, sender=who)
    stake_token.approve(staking, amount, sender=who)
    staking.register_node("http://127.0.0.1/n", 1, b"local\x00\x00\x00", "0x" + "00" * 20, amount, sender=who)
    return amount
