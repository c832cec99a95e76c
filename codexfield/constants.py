"""Protocol constants shared by the contracts, the SDK, the indexer and the CLI.

Each value here mirrors a constant in the Vyper sources; tests check that they agree.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from codexfield.reasons import REASONS

#: Vouchers per `UsageMeter.ingest` (the contract's `MAX_BATCH`, the bound of its arrays).
METER_MAX_BATCH = 64


class Kind(IntEnum):
    """Capsule kinds (CapsuleRegistry `kind`)."""

    DATASET = 1
    MODEL = 2
    CODE = 3
    PROMPT = 4
    INFERENCE_SCRIPT = 5
    AI_OUTPUT = 6
    KNOWLEDGE = 7


class CapsuleState(IntEnum):
    """Capsule lifecycle states (0: no such capsule)."""

    NONE = 0
    ACTIVE = 1
    DEPRECATED = 2
    DISABLED = 3
    FLAGGED = 4


Reject = IntEnum(  # noqa: N816 - built from the one reason table (codexfield/reasons.py)
    "Reject", [(r.name, r.code) for r in REASONS], module=__name__
)
Reject.__doc__ = (
    "Reason codes of `UsageMeter.VoucherRejected` and LicenseManager usage statuses (codexfield/reasons.py)."
)


class Revocation(IntFlag):
    """`Terms.revocation` bits (LicenseManager); 0 means irrevocable."""

    LICENSOR_AT_WILL = 1  # the capsule's current owner, effective after `notice_period`
    ARBITER_ON_BREACH = 2  # the ARBITER role, effective immediately


class NodeStatus(IntEnum):
    """AccessStaking node status."""

    NONE = 0
    ACTIVE = 1
    JAILED = 2
    EJECTED = 3


BPS = 10_000
WAD = 10**18
