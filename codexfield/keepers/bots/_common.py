"""Shared wiring of the silverback apps: the address book, the signer, the state file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from codexfield.keepers.app import build, default_state
from codexfield.keepers.base import KeeperState, setup_logging


def make_keeper(name: str, bot: Any, **opts: Any) -> Any:
    """The package keeper `name` on the connected network, signing with silverback's signer."""
    from codexfield.deployments import current

    setup_logging()
    if bot.signer is None:
        raise RuntimeError(f"the {name} bot sends transactions: start it with --account ALIAS")
    book = current()
    path = os.environ.get(f"CODEXFIELD_{name.upper()}_STATE")
    state = KeeperState(Path(path) if path else default_state(name, book.chain_id, bot.signer.address))
    return build(name, book, bot.signer, state, **opts)
