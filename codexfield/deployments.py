"""Address books: `deployments/<ecosystem>-<network>.json` (DESIGN §4.6).

Every tool (SDK, CLI, indexer, keepers, node) finds the system through one of these files:
`$CODEXFIELD_ADDRESS_BOOK` (one file, for whatever network is connected; the CLI's `--book`),
else `<dir>/<ecosystem>-<network>.json` in `$CODEXFIELD_DEPLOYMENTS`, else the checkout's
`deployments/` (source tree) or `./deployments` (an installed package).

    {"chain_id": 31337, "block": 1, "commit": "...",
     "contracts": {"CapsuleRegistry": "0x...", ...},
     "tokens": {"USDC": {"address": "0x...", "decimals": 6}},
     "roles": {"CapsuleRegistry": {"PAUSER_ROLE": ["0x..."], ...}, ...},   # the handover
     "deployer": "0x...", "settings": {"treasury": "0x...", "protocol_fee_bps": 200},
     "pending": {}}                     # deployments sent by a run that did not finish

`block` is the block the first deployment run started at (the indexer's start); reruns keep it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ADDRESS_BOOK_ENV = "CODEXFIELD_ADDRESS_BOOK"


def _default_dir() -> Path:
    if os.environ.get("CODEXFIELD_DEPLOYMENTS"):
        return Path(os.environ["CODEXFIELD_DEPLOYMENTS"])
    if (ROOT / "ape-config.yaml").is_file():  # a source checkout
        return ROOT / "deployments"
    return Path.cwd() / "deployments"


DEPLOYMENTS_DIR = _default_dir()


class AddressBookError(RuntimeError):
    """The address book is missing or does not name what was asked for."""


@dataclass
class AddressBook:
    chain_id: int
    block: int = 0
    commit: str = ""
    contracts: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    abi_hashes: dict[str, str] = field(default_factory=dict)
    roles: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    deployer: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    def address(self, name: str) -> str:
        try:
            return self.contracts[name]
        except KeyError:
            where = self.path or "the address book"
            raise AddressBookError(
                f"{name} is not deployed according to {where}; run 'ape run deploy --network ...' first"
            ) from None

    def token(self, symbol: str) -> dict[str, Any]:
        try:
            return self.tokens[symbol]
        except KeyError:
            raise AddressBookError(
                f"token {symbol!r} is not in {self.path or 'the address book'}; known: {sorted(self.tokens)}"
            ) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "block": self.block,
            "commit": self.commit,
            "contracts": self.contracts,
            "tokens": self.tokens,
            "abi_hashes": self.abi_hashes,
            "roles": self.roles,
            "deployer": self.deployer,
            "settings": self.settings,
            "pending": self.pending,
        }


def book_path(ecosystem: str, network: str, directory: Path | None = None) -> Path:
    return Path(directory or DEPLOYMENTS_DIR) / f"{ecosystem}-{network}.json"


def load(ecosystem: str, network: str, directory: Path | None = None) -> AddressBook:
    """Read the address book of `ecosystem:network` (`$CODEXFIELD_ADDRESS_BOOK` when set and no
    `directory` is given)."""
    if directory is None and os.environ.get(ADDRESS_BOOK_ENV):
        return load_file(os.environ[ADDRESS_BOOK_ENV])
    path = book_path(ecosystem, network, directory)
    if not path.exists():
        raise AddressBookError(
            f"no address book at {path}; deploy first with 'ape run deploy --network {ecosystem}:{network}'"
            f" or point {ADDRESS_BOOK_ENV} at one"
        )
    return load_file(path)


def load_file(path: str | os.PathLike[str]) -> AddressBook:
    """Read the address book at `path`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise AddressBookError(f"no address book at {path}; deploy first with 'ape run deploy' or fix the path")
    try:
        data = json.loads(path.read_text())
        int(data["chain_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AddressBookError(f"{path} is not an address book (JSON with chain_id and contracts): {exc}") from None
    return AddressBook(
        chain_id=int(data["chain_id"]),
        block=int(data.get("block", 0)),
        commit=data.get("commit", ""),
        contracts=dict(data.get("contracts", {})),
        tokens=dict(data.get("tokens", {})),
        abi_hashes=dict(data.get("abi_hashes", {})),
        roles={c: {r: list(h) for r, h in roles.items()} for c, roles in data.get("roles", {}).items()},
        deployer=data.get("deployer", ""),
        settings=dict(data.get("settings", {})),
        pending=dict(data.get("pending", {})),
        path=path,
    )


def save(book: AddressBook, ecosystem: str, network: str, directory: Path | None = None) -> Path:
    """Write the address book atomically (temp file + rename)."""
    path = book_path(ecosystem, network, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(book.to_json(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    book.path = path
    return path


def current() -> AddressBook:
    """The address book of the network ape is connected to."""
    from ape import networks

    provider = networks.provider
    book = load(provider.network.ecosystem.name, provider.network.name)
    if book.chain_id != provider.chain_id:
        raise AddressBookError(
            f"{book.path} is for chain {book.chain_id}, but the connected network "
            f"{provider.network.ecosystem.name}:{provider.network.name} is chain {provider.chain_id}"
        )
    return book


def contract(name: str, book: AddressBook | None = None):
    """An ape contract instance of `name` at its address (contract types: codexfield.contracts)."""
    from codexfield import contracts

    book = book or current()
    return contracts.at(name, book.address(name))


def _is_active(provider, network: str) -> bool:
    """Whether the connected `provider` already is the `ecosystem[:network[:provider]]` choice."""
    wanted = [part for part in network.split(":")]
    have = [provider.network.ecosystem.name, provider.network.name, provider.name]
    return 0 < len(wanted) <= 3 and all(w == h for w, h in zip(wanted, have) if w)


DEFAULT_NETWORK = "ethereum:local:foundry"

#: Gas limit over ape's estimate where the network's config leaves a bare estimate
#: (`gas_limit: auto`, multiplier 1.0: every RPC-URL network and every live network ape knows).
#: The estimate is taken at the pending block, the transaction runs at the block it lands in, and
#: several paths cost more there: a settlement booked in a new usage epoch writes a fresh
#: `usage[node][epoch]` slot (+17,100 gas), a claim after someone else's propagate finds a
#: non-empty vault. Forge's `--gas-estimate-multiplier` default, 130%; unused gas is not paid.
GAS_HEADROOM = 1.3


def gas_headroom(provider: Any = None) -> None:
    """Give the connected network `GAS_HEADROOM` over ape's estimate, unless its config chose a
    limit (`max`, a number, or a multiplier other than 1.0); local chains use `max` and keep it.

    The SDK, the CLI, the keepers and the node apply it when they connect or send, so a
    transaction estimated in one block and mined in the next does not run out of gas.
    """
    from ape import networks
    from ape.types.gas import AutoGasLimit

    provider = provider if provider is not None else networks.active_provider
    network = getattr(provider, "network", None)
    if network is None:
        return
    limit = network.gas_limit
    if limit == "auto" or (isinstance(limit, AutoGasLimit) and limit.multiplier == 1.0):
        # NetworkAPI caches both as properties: this network object now answers the headroom.
        network.__dict__["gas_limit"] = AutoGasLimit(multiplier=GAS_HEADROOM)
        network.__dict__["auto_gas_multiplier"] = GAS_HEADROOM


@contextmanager
def connected(network: str | None = None) -> Iterator[AddressBook]:
    """Connect ape to `network` (e.g. `ethereum:local:foundry`) and yield its address book.

    When ape is already connected to that network (inside `ape run`, `ape console` or
    `ape test`), the live provider is reused instead of starting a second one. `None` means
    the connected network, else `DEFAULT_NETWORK`.
    """
    from ape import networks

    active = networks.active_provider
    if active is not None and active.is_connected and (network is None or _is_active(active, network)):
        gas_headroom(active)
        yield current()
        return
    with networks.parse_network_choice(network or DEFAULT_NETWORK) as provider:
        gas_headroom(provider)
        yield current()


def load_account(alias: str):
    """An ape account: `TEST:<n>` / `TEST::<n>` (test accounts of local chains) or a stored alias."""
    from ape import accounts

    if alias.upper().startswith("TEST:"):
        index = alias.split(":")[-1]
        if not index.isdigit() or int(index) >= len(accounts.test_accounts):
            raise ValueError(f"{alias!r}: use TEST:<n> with a test account index below {len(accounts.test_accounts)}")
        return accounts.test_accounts[int(index)]
    return accounts.load(alias)
