"""Routing: the nodes of a deployed AccessStaking as `NodeInfo`, ranked for a consumer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from codexfield.poa.formula import WAD, Status, median

SERVICE_BITS: dict[str, int] = {"compute": 1, "storage": 2, "edge": 4, "tee": 8, "transfer": 16}


@dataclass
class NodeInfo:
    """A node as routing sees it (from the chain or the indexer)."""

    address: str
    endpoint: str = ""
    services: int = 0
    region: str = ""
    status: int = Status.ACTIVE
    reliability: int = 0
    stake: int = 0
    price_per_mu: int = 0
    strikes: int = 0
    jailed_until: int = 0
    unbonding: int = 0
    active: bool = True

    def services_names(self) -> list[str]:
        return [k for k, bit in SERVICE_BITS.items() if self.services & bit]


def parse_services(text: str | Iterable[str] | int | None) -> int:
    """`"compute,tee"` -> 9; ints pass through."""
    if text is None or text == "":
        return 0
    if isinstance(text, int):
        return text
    parts = text.split(",") if isinstance(text, str) else list(text)
    bits = 0
    for part in parts:
        name = part.strip().lower()
        if not name:
            continue
        if name not in SERVICE_BITS:
            raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICE_BITS)}")
        bits |= SERVICE_BITS[name]
    return bits


def routing_score(n: NodeInfo, region: str | None = None, reference_price: int = 0, region_bonus: float = 0.2) -> float:
    """Routing utility: r^2 (the reward weight's reliability term), +20% in the wanted region,
    divided by (1 + price / reference_price) when prices are known. 0 for inactive nodes."""
    if not n.active or n.status != Status.ACTIVE:
        return 0.0
    r = n.reliability / WAD
    u = r * r
    if region and n.region == region:
        u *= 1 + region_bonus
    if reference_price > 0:
        u /= 1 + n.price_per_mu / reference_price
    return u


def rank_nodes(
    nodes: Iterable[NodeInfo],
    services: int = 0,
    region: str | None = None,
    max_price: int | None = None,
    observed: Mapping[str, tuple[float, float]] | None = None,
    latency_ref_ms: float = 1_000.0,
) -> list[tuple[float, NodeInfo]]:
    """Active nodes offering every bit of `services`, priced at most `max_price`, best first.

    The reference price is the median advertised price of the candidates (0 = no price term);
    `observed` maps a node address to what this consumer measured itself (mean latency in ms,
    share of calls that failed or were refused): the score is multiplied by (1 - failure)^2 and
    divided by (1 + latency / latency_ref_ms), so the chain's reliability (probers, epochs)
    and the consumer's own experience both route. Ties break on stake (higher first), then
    address.
    """
    cands = [n for n in nodes if n.active and n.status == Status.ACTIVE and (n.services & services) == services]
    if max_price is not None:
        cands = [n for n in cands if n.price_per_mu <= max_price]
    prices = [n.price_per_mu for n in cands if n.price_per_mu > 0]
    ref = median(prices) if prices else 0
    scored = []
    for n in cands:
        u = routing_score(n, region, ref)
        seen = (observed or {}).get(n.address.lower())
        if seen is not None:
            lat, fail = seen
            u *= (1 - min(1.0, max(0.0, fail))) ** 2 / (1 + max(0.0, lat) / latency_ref_ms)
        scored.append((u, n))
    scored.sort(key=lambda t: (-t[0], -t[1].stake, t[1].address))
    return scored


def region_bytes(region: str) -> bytes:
    """A region code as the contract's bytes8 (right-padded with zeros)."""
    raw = region.encode()
    if len(raw) > 8:
        raise ValueError(f"region {region!r} is longer than 8 bytes")
    return raw.ljust(8, b"\x00")


def region_text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        raw = bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
    return bytes(raw).rstrip(b"\x00").decode(errors="replace")


def read_nodes(staking: Any) -> list[NodeInfo]:
    """Every registered node of a deployed AccessStaking (ape contract instance)."""
    out = []
    for i in range(int(staking.node_count())):
        addr = staking.node_at(i)
        n = staking.node(addr)
        out.append(
            NodeInfo(
                address=str(addr),
                endpoint=staking.endpoint(addr),
                services=int(n.services),
                region=region_text(staking.region(addr)),
                status=int(n.status),
                reliability=int(n.reliability),
                stake=int(n.stake),
                unbonding=int(n.unbonding),
                strikes=int(n.strikes),
                jailed_until=int(n.jailed_until),
                price_per_mu=int(staking.price_per_mu(addr)),
                active=bool(staking.is_active(addr)),
            )
        )
    return out
