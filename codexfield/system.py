"""The deployed CodexField system as one typed object: every contract by role, tokens by symbol.

    system = deploy_system(admin, DeployConfig(test_tokens=True))   # codexfield.deploy
    system.meter.settle(vouchers, sender=node)                         # ape instances, by role
    system.contracts["UsageMeter"]                                     # or by contract name
    system.usdc.mint(alice, 10**6, sender=alice)                       # a local chain's test token
    system.book.path                                                   # the address book behind it

`deploy_system` returns one; `System(book)` wraps any address book (a file `deployments.load`
read, the SDK's `CodexField.system`). Contracts are built on first use through
`codexfield.contracts.at` (the ABIs ape compiled, no ape project needed), so a dry run's
`System` over an empty book is fine until a contract is asked for, and then names what is
missing (`AddressBookError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codexfield.deployments import AddressBook

# Attribute -> contract name: the one map from a part's name in code (`system.meter`, `cf.meter`) to
# the contract the book names. Reputation is in the book too (`system.reputation`).
NAMES: dict[str, str] = {
    "identity": "IdentityRegistry",
    "registry": "CapsuleRegistry",
    "licenses": "LicenseManager",
    "router": "RoyaltyRouter",
    "meter": "UsageMeter",
    "staking": "AccessStaking",
    "reputation": "Reputation",
}


@dataclass(frozen=True)
class System:
    """The contracts an address book names, as ape instances built on first use."""

    book: AddressBook
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def contract(self, name: str) -> Any:
        """The ape instance of contract `name` (e.g. "UsageMeter") at the book's address."""
        if name not in self._cache:
            from codexfield import contracts

            self._cache[name] = contracts.at(name, self.book.address(name))
        return self._cache[name]

    def __getattr__(self, attr: str) -> Any:
        if attr in NAMES:
            return self.contract(NAMES[attr])
        raise AttributeError(f"{type(self).__name__} has no {attr!r} (contracts: {', '.join(NAMES)})")

    @property
    def contracts(self) -> dict[str, Any]:
        """Every system contract the book names, by contract name (as the gateway and keepers take them)."""
        return {name: self.contract(name) for name in NAMES.values() if name in self.book.contracts}

    def token(self, symbol: str) -> Any:
        """A local chain's test token by symbol (MockERC20, with an open `mint`), as deploy.py creates them."""
        key = f"token:{symbol}"
        if key not in self._cache:
            from codexfield import contracts

            self._cache[key] = contracts.at("MockERC20", self.book.token(symbol)["address"])
        return self._cache[key]

    @property
    def usdc(self) -> Any:
        """The test USDC (6 decimals): escrow, fees and rewards on local chains."""
        return self.token("USDC")

    @property
    def cdx(self) -> Any:
        """The test CDX (18 decimals): the stake token on local chains."""
        return self.token("CDX")

    @property
    def domain(self) -> Any:
        """The meter's EIP-712 domain (`codexfield.sdk.metering.Domain`, what vouchers are signed under)."""
        from codexfield.sdk.metering import Domain

        return Domain.of(self.meter)
