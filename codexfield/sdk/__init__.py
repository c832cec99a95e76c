"""Client-side SDK: the `CodexField` facade over an address book (client.py), and voucher
metering for consumers and nodes (metering.py).

    from codexfield.sdk import CodexField
"""

from __future__ import annotations

from typing import Any

__all__ = ["CodexField", "IngestResult"]


def __getattr__(name: str) -> Any:  # lazy: `codexfield.sdk.metering` stays import-light
    if name in __all__:
        from codexfield.sdk import client

        return getattr(client, name)
    raise AttributeError(name)
