"""Settler: on `RoyaltyRouter.RoyaltyCredited`, propagate vaults leaf-to-root in batches.

`Settler.run_once()`:
1. scans `RoyaltyCredited` logs from the last scanned block to `head - confirmations` and adds
   the credited capsules to a durable pending set per token (scan position and pending set
   are written in one SQLite transaction, so a crash re-scans at most what it had not saved).
   Each credit stamps its capsule with a fresh sequence number (`pending:<token>` maps
   capsule -> the number of its latest credit);
2. when a token has pending capsules and no round in progress, it freezes a *round*: the
   pending capsules with their sequence numbers (the round's sources), and the lineage read
   from the registry, which `codexfield.royalty.plan` orders children-first in batches of
   `batch_size` (the plan is saved);
3. sends `propagate_many(batch, token)` for each batch under intent `settle:<token>:<round>:<i>`;
   when every batch is done the round is closed: a source leaves the pending set only if no
   credit arrived for it since the round was planned (same sequence number), in one
   read-modify-write transaction. A credit that lands mid-round — during a crash, a transient
   RPC failure, or after its capsule's batch went out — therefore stays pending and is
   propagated by the next round.

A crash anywhere resumes the same round at the first unfinished batch; `TxSender.reconcile`
guarantees a batch that was signed is never sent twice. An empty vault makes
`propagate_many` skip that capsule, so replanning is always safe.
"""

from __future__ import annotations

from typing import Any

from codexfield import royalty
from codexfield.keepers.base import KeeperState, StateTx, TxSender, log_event, retry


def _pending(value: Any) -> dict[str, int]:
    """The pending map of a token (an older state file keeps a plain list of ids)."""
    if isinstance(value, list):
        return {str(int(c)): 0 for c in value}
    return {str(k): int(v) for k, v in (value or {}).items()}


def _credit(tx: StateTx, token: str, capsule_ids: Any) -> None:
    """Stamp each credited capsule of `token` with a fresh sequence number (inside `tx`)."""
    key = f"pending:{token}"
    pending = _pending(tx.get(key))
    seq = int(tx.get("credit_seq", 0))
    for cid in capsule_ids:
        seq += 1
        pending[str(int(cid))] = seq
    tx.set("credit_seq", seq)
    tx.set(key, pending)


class Settler:
    who = "settler"

    def __init__(
        self,
        router: Any,
        registry: Any,
        account: Any,
        state: KeeperState,
        *,
        start_block: int = 0,
        confirmations: int = 0,
        batch_size: int = 64,
        scan_chunk: int = 2_000,
        hooks: dict | None = None,
    ):
        self.router = router
        self.registry = registry
        self.account = account
        self.state = state
        self.confirmations = confirmations
        self.batch_size = batch_size
        self.scan_chunk = scan_chunk
        self.sender = TxSender(account, state, self.who, hooks=hooks)
        if state.get("block") is None:
            state.set("block", start_block - 1)
        self.sender.reconcile()

    # -- scanning ----------------------------------------------------------------------------

    def note_credit(self, capsule_id: int, token: str) -> None:
        """Add one credited capsule to the pending set (the silverback event handler's path)."""
        self.state.transact(lambda tx: _credit(tx, token.lower(), [capsule_id]))

    def scan(self) -> int:
        """Read new RoyaltyCredited logs into the pending sets; returns how many were seen."""
        from ape import chain

        head = retry(lambda: chain.blocks.head.number, who=self.who, what="head") - self.confirmations
        start = int(self.state.get("block")) + 1
        seen = 0
        while start <= head:
            stop = min(head, start + self.scan_chunk - 1)
            logs = retry(
                lambda start=start, stop=stop: list(self.router.RoyaltyCredited.range(start, stop + 1)),
                who=self.who,
                what="logs",
            )
            adds: dict[str, list[int]] = {}
            for log in logs:
                if getattr(log, "removed", False):
                    continue
                adds.setdefault(str(log.token).lower(), []).append(int(log.capsule_id))

            def save(tx: StateTx, adds=adds, stop=stop) -> None:
                for token, ids in adds.items():
                    _credit(tx, token, ids)
                tx.set("block", stop)

            self.state.transact(save)
            seen += len(logs)
            start = stop + 1
        if seen:
            log_event(self.who, "scanned", credits=seen, to_block=head)
        return seen

    # -- settling ----------------------------------------------------------------------------

    def _open_round(self, token: str) -> dict | None:
        rnd = self.state.get(f"round:{token}")
        if rnd is not None:
            return rnd
        snapshot = _pending(self.state.get(f"pending:{token}"))
        if not snapshot:
            return None
        sources = sorted(int(c) for c in snapshot)
        graph = retry(lambda: royalty.load_graph_from_chain(self.registry, sources), who=self.who, what="lineage")
        batches = royalty.plan(graph, sources, self.batch_size)
        number = int(self.state.get(f"rounds:{token}", 0)) + 1
        rnd = {"number": number, "sources": sources, "snapshot": snapshot, "batches": batches}
        self.state.update({f"round:{token}": rnd, f"rounds:{token}": number})
        log_event(
            self.who, "round_planned", token=token, round=number, capsules=sum(map(len, batches)), batches=len(batches)
        )
        return rnd

    def _attempt(self, base: str) -> str:
        """The intent id for a batch: a batch whose earlier attempt was never signed (dropped
        after a crash) is retried under `<id>#<n>`; a signed one is never re-sent."""
        k = 0
        while True:
            iid = base if k == 0 else f"{base}#{k}"
            x = self.state.intent(iid)
            if x is None or x.status != "dropped":
                return iid
            k += 1

    def settle(self) -> int:
        """Run every planned or pending round to the end; returns the batches sent."""
        sent = 0
        tokens = dict.fromkeys(k.split(":", 1)[1] for k in self.state.keys("pending:") + self.state.keys("round:"))
        for token in tokens:
            for _ in range(3):  # bounded: the open round, then rounds for credits that arrived meanwhile
                rnd = self._open_round(token)
                if rnd is None:
                    break
                batches = rnd["batches"]
                for i, batch in enumerate(batches):
                    intent = self._attempt(f"settle:{token}:{rnd['number']}:{i}")
                    if self.sender.done(intent):
                        continue
                    receipt = self.sender.send(
                        intent,
                        self.router.propagate_many,
                        batch,
                        token,
                        action="propagate_many",
                        payload={"token": token, "capsules": batch},
                    )
                    if receipt is not None:
                        sent += 1
                kept = self.state.transact(lambda tx, rnd=rnd, token=token: self._close(tx, token, rnd))
                log_event(
                    self.who, "round_done", token=token, round=rnd["number"], batches=len(batches), still_pending=kept
                )
        return sent

    @staticmethod
    def _close(tx: StateTx, token: str, rnd: dict) -> int:
        """Close the round: drop each source from the pending set unless it was credited again
        since the round was planned; returns how many capsules stay pending."""
        key = f"pending:{token}"
        pending = _pending(tx.get(key))
        snapshot = _pending(rnd.get("snapshot", {str(c): 0 for c in rnd["sources"]}))
        for cid, seq in snapshot.items():
            if pending.get(cid) == seq:
                del pending[cid]
        tx.set(key, pending)
        tx.set(f"round:{token}", None)
        return len(pending)

    def run_once(self) -> int:
        self.scan()
        return self.settle()
