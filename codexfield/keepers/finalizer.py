"""Finalizer: sweep protocol fees into the PoA reward pool, finalize ended epochs page by page.

`Finalizer.run_once()`:
- `UsageMeter.sweep_fees(reward_token)` when fees have accrued (they fund the current
  epoch's pool), under intent `sweep:<epoch>:<n>`;
- while `next_epoch`'s report window has closed: `finalize_epoch(next_epoch, page)` under
  intent `finalize:<epoch>:<call>` until the epoch is final (the contract's cursor makes a
  page that landed twice impossible: a second identical call would revert "not next epoch"
  or score the next page, and the intent log never sends one call twice).
"""

from __future__ import annotations

from typing import Any

from codexfield.keepers.base import KeeperState, TxSender, log_event, retry


class Finalizer:
    who = "finalizer"

    def __init__(
        self,
        staking: Any,
        meter: Any,
        account: Any,
        state: KeeperState,
        *,
        page: int = 64,
        max_calls: int = 50,
        sweep: bool = True,
        hooks: dict | None = None,
    ):
        self.staking = staking
        self.meter = meter
        self.account = account
        self.state = state
        self.page = page
        self.max_calls = max_calls
        self.sweep_enabled = sweep and meter is not None
        self.sender = TxSender(account, state, self.who, hooks=hooks)
        self.genesis = int(staking.genesis())
        self.epoch_length = int(staking.epoch_length())
        self.report_window = int(staking.params().report_window)
        self.reward_token = str(staking.reward_token())
        self.sender.reconcile()

    def _now(self) -> int:
        from ape import chain

        return int(retry(lambda: chain.blocks.head.timestamp, who=self.who, what="head"))

    def _next_call(self, prefix: str) -> str:
        n = int(self.state.get(f"calls:{prefix}", 0))
        iid = f"{prefix}:{n}"
        x = self.state.intent(iid)
        if x is not None and x.status in TxSender.FINAL:
            n += 1
            self.state.set(f"calls:{prefix}", n)
            iid = f"{prefix}:{n}"
        return iid

    def sweep(self) -> int:
        if not self.sweep_enabled:
            return 0
        fees = int(retry(lambda: self.meter.fee_balance(self.reward_token), who=self.who, what="fees"))
        if fees == 0:
            return 0
        epoch = (self._now() - self.genesis) // self.epoch_length
        intent = self._next_call(f"sweep:{epoch}")
        receipt = self.sender.send(
            intent,
            self.meter.sweep_fees,
            self.reward_token,
            action="sweep_fees",
            payload={"token": self.reward_token, "amount": fees},
        )
        if receipt is not None:
            log_event(self.who, "swept", epoch=epoch, amount=fees)
        return fees

    def finalize(self) -> list[int]:
        finalized: list[int] = []
        for _ in range(self.max_calls):
            epoch = int(retry(lambda: self.staking.next_epoch(), who=self.who, what="next_epoch"))
            closes = self.genesis + (epoch + 1) * self.epoch_length + self.report_window
            if self._now() < closes:
                break
            intent = self._next_call(f"finalize:{epoch}")
            self.sender.send(
                intent,
                self.staking.finalize_epoch,
                epoch,
                self.page,
                action="finalize_epoch",
                payload={"epoch": epoch, "page": self.page},
            )
            if int(self.staking.next_epoch()) > epoch:
                finalized.append(epoch)
                log_event(self.who, "finalized", epoch=epoch)
        return finalized

    def run_once(self) -> list[int]:
        self.sweep()
        return self.finalize()
