"""Gas rows for the CapsuleRegistry (DESIGN §6: mint with 2 parents <= 150k)."""

from __future__ import annotations

import os

from gasrows import record

TARGET_MINT_2 = 150_000


def test_gas__mint_with_0_2_8_parents(registry, creator, mint_capsule):
    mint_capsule(creator)  # the creator already holds a capsule: balance slot warm, as in steady state
    parents = [mint_capsule(creator) for _ in range(8)]
    rows = {}
    for k in (0, 2, 8):
        ps = [(p, 100) for p in parents[:k]]
        tx = registry.mint(2, os.urandom(32), ps, [], "", sender=creator)
        rows[f"CapsuleRegistry.mint ({k} parents)"] = tx.gas_used
    record("capsule", "CapsuleRegistry.mint (0 parents)", rows["CapsuleRegistry.mint (0 parents)"], None)
    record("capsule", "CapsuleRegistry.mint (2 parents)", rows["CapsuleRegistry.mint (2 parents)"], "≤ 150k")
    record("capsule", "CapsuleRegistry.mint (8 parents)", rows["CapsuleRegistry.mint (8 parents)"], None)
    assert rows["CapsuleRegistry.mint (2 parents)"] <= TARGET_MINT_2


def test_gas__publish_version_and_set_state(registry, creator, mint_capsule):
    a, b = mint_capsule(creator), mint_capsule(creator)
    v1 = mint_capsule(creator, parents=[(a, 100), (b, 100)])
    tx = registry.publish_version(v1, os.urandom(32), "", sender=creator)
    record("capsule", "CapsuleRegistry.publish_version (2 parents)", tx.gas_used, None)
    tx = registry.set_state(v1, 2, b"", sender=creator)
    record("capsule", "CapsuleRegistry.set_state", tx.gas_used, None)
