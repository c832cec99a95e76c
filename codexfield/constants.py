"""Protocol constants shared by the contracts, the SDK, the indexer and the CLI.

Each value here mirrors a constant in the Vyper sources; tests check that they agree.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


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


class Reject(IntEnum):
    """Reason codes of `UsageMeter.VoucherRejected` and `LicenseManager.check_usage`."""

    OK = 0
    BAD_SIGNATURE = 1
    DEADLINE_PASSED = 2
    NOTHING_NEW = 3
    UNKNOWN_CREDENTIAL = 4
    EXPIRED = 5
    REVOKED = 6
    QUOTA_EXCEEDED = 7
    RATE_EXCEEDED = 8
    PURPOSE_OUT_OF_SCOPE = 9
    ESCROW_SHORT = 10
    TEE_SIGNATURE_MISSING = 11
    COUNTER_DECREASED = 12
    NODE_INACTIVE = 13


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
