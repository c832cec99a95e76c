"""The deployed CodexField system in tests: `codexfield.system.System` (every contract by name).

    system = deploy(admin, reporters=[reporter])          # codexfield.deploy.deploy_system, no book file
    system.licenses.create_terms(terms_tuple(capsule, system.usdc), sender=licensor)

The root `system` fixture (tests/conftest.py) is one per module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from codexfield.deploy import DeployConfig, deploy_system
from codexfield.system import System

__all__ = ["System", "deploy", "register_node"]


def deploy(admin: Any, *, reporters: Iterable[Any] = (), save: bool = False, **config: Any) -> System:
    """`deploy_system` with test tokens and the given reporters, silently; the book is kept in
    memory unless `save` (then under deployments.DEPLOYMENTS_DIR)."""
    cfg = DeployConfig(test_tokens=True, reporters=[str(getattr(r, "address", r)) for r in reporters], **config)
    return deploy_system(admin, cfg, save=save, log=lambda _msg: None)


def register_node(staking: Any, stake_token: Any, who: Any, amount: int | None = None) -> int:
    """Mint `amount` (default: the minimum stake) of the MockERC20 `stake_token` to `who` and
    register it in `staking` (services: compute, region "local", no TEE key): it then `serves`."""
    amount = int(staking.params().min_stake) if amount is None else amount
    stake_token.mint(who, amount, sender=who)
    stake_token.approve(staking, amount, sender=who)
    staking.register_node("http://127.0.0.1/n", 1, b"local\x00\x00\x00", "0x" + "00" * 20, amount, sender=who)
    return amount
