"""Settler: on `RoyaltyRouter.RoyaltyCredited`, propagate vaults leaf-to-root in batches.

`Settler.run_once()`:
1. scans `RoyaltyCredited` logs from the last scanned block to `head - confirmations` and adds
   the credited capsules to a durable pending set per token (scan position and pending set
   are written in one SQLite transaction, so a crash re-scans at most what it had not saved);
2. when a token has pending capsules and no round in progress, it freezes a *round*: the
   lineage is read from the registry and `codexfield.royalty.plan` orders every reachable
   capsule children-first in batches of `batch_size` (the plan is saved);
3. sends `propagate_many(batch, token)` for each batch under intent `settle:<token>:<round>:<i>`;
   the round is closed (pending cleared) in the same write that marks its last batch done.

A crash anywhere resumes the same round at the first unfinished batch; `TxSender.reconcile`
guarantees a batch that was signed is never sent twice. An empty vault makes
`propagate_many` skip that capsule, so replanning is always safe.
"""

from __future__ import annotations

from typing import Any

from codexfield import royalty
from codexfield.keepers.base import KeeperState, TxSender, log_event, retry


class Settler:
    who = "settler"

    def __init__(self, router: Any, registry: Any, account: Any, state: KeeperState, *, start_block: int = 0,
                 confirmations: int = 0, batch_size: int = 64, scan_chunk: int = 2_000, hooks: dict | None = None):
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
        key = f"pending:{token.lower()}"
        pending = set(self.state.get(key, []))
        if int(capsule_id) not in pending:
            pending.add(int(capsule_id))
            self.state.set(key, sorted(pending))

    def scan(self) -> int:
        """Read new RoyaltyCredited logs into the pending sets; returns how many were seen."""
        from ape import chain

        head = retry(lambda: chain.blocks.head.number, who=self.who, what="head") - self.confirmations
        start = int(self.state.get("block")) + 1
        seen = 0
        while start <= head:
            stop = min(head, start + self.scan_chunk - 1)
            logs = retry(lambda: list(self.router.RoyaltyCredited.range(start, stop + 1)), who=self.who,
                         what="logs")
            adds: dict[str, set[int]] = {}
            for log in logs:
                if getattr(log, "removed", False):
                    continue
                adds.setdefault(str(log.token).lower(), set()).add(int(log.capsule_id))
            update: dict[str, Any] = {"block": stop}
            for token, ids in adds.items():
                key = f"pending:{token}"
                update[key] = sorted(set(self.state.get(key, [])) | ids)
            self.state.update(update)
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
        pending = self.state.get(f"pending:{token}", [])
        if not pending:
            return None
        graph = retry(lambda: royalty.load_graph_from_chain(self.registry, pending), who=self.who, what="lineage")
        batches = royalty.plan(graph, pending, self.batch_size)
        number = int(self.state.get(f"rounds:{token}", 0)) + 1
        rnd = {"number": number, "sources": pending, "batches": batches}
        self.state.update({f"round:{token}": rnd, f"rounds:{token}": number})
        log_event(self.who, "round_planned", token=token, round=number, capsules=sum(map(len, batches)),
                  batches=len(batches))
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
                close = {
                    f"pending:{token}": sorted(set(self.state.get(f"pending:{token}", [])) - set(rnd["sources"])),
                    f"round:{token}": None,
                }
                for i, batch in enumerate(batches):
                    intent = self._attempt(f"settle:{token}:{rnd['number']}:{i}")
                    if self.sender.done(intent):
                        continue
                    last = i == len(batches) - 1
                    receipt = self.sender.send(intent, self.router.propagate_many, batch, token,
                                               action="propagate_many", payload={"token": token, "capsules": batch},
                                               also=close if last else None)
                    if receipt is not None:
                        sent += 1
                if self.state.get(f"round:{token}") is not None:  # e.g. the last batch was final already
                    close[f"pending:{token}"] = sorted(
                        set(self.state.get(f"pending:{token}", [])) - set(rnd["sources"]))
                    self.state.update(close)
                log_event(self.who, "round_done", token=token, round=rnd["number"], batches=len(batches))
        return sent

    def run_once(self) -> int:
        self.scan()
        return self.settle()
