"""Shared helpers for the AccessStaking tests (imported by the test modules; not a conftest)."""

from __future__ import annotations

from dataclasses import replace

from codexfield import poa

WAD = poa.WAD
EPOCH = 1_000
WINDOW = 100
THAW = 2_500
ZERO = "0x0000000000000000000000000000000000000000"
REGION = b"eu-west\x00"

# Small, fast-moving parameters for tests: jail after 2 strikes for 2 epochs, eject at 2nd jail.
PARAMS = replace(
    poa.DEFAULT_PARAMS,
    min_stake=100 * WAD,
    report_window=WINDOW,
    thaw_period=THAW,
    strikes_to_jail=2,
    jail_epochs=2,
    max_jails=2,
)


class System:
    """A deployed AccessStaking (committee `reporters` from epoch 0) with its tokens and time helpers."""

    def __init__(self, project, chain, admin, reporters=(), params=PARAMS, same_token=False):
        self.chain = chain
        self.admin = admin
        self.params = params
        self.reporters = list(reporters)
        self.stk = admin.deploy(project.MockERC20, "Stake", "STK", 18)
        self.rwd = self.stk if same_token else admin.deploy(project.MockERC20, "Reward", "RWD", 18)
        self.staking = admin.deploy(
            project.AccessStaking, self.stk, self.rwd, admin, 0, EPOCH, params.as_tuple(), self.reporters
        )
        self.genesis = int(self.staking.genesis())

    # -- time -------------------------------------------------------------------------------------
    def start(self, epoch: int) -> int:
        return self.genesis + epoch * EPOCH

    def goto(self, epoch: int, offset: int = 1) -> None:
        """Make the next block fall at `offset` seconds into `epoch` (or stay, if already later)."""
        ts = self.start(epoch) + offset
        if ts > self.chain.pending_timestamp:
            self.chain.pending_timestamp = ts

    def after_window(self, epoch: int) -> None:
        ts = self.start(epoch + 1) + WINDOW
        if ts > self.chain.pending_timestamp:
            self.chain.pending_timestamp = ts

    # -- actions ----------------------------------------------------------------------------------
    def fund_stake(self, acct, amount: int) -> None:
        self.stk.mint(acct, amount, sender=acct)
        self.stk.approve(self.staking, 2**256 - 1, sender=acct)

    def register(self, acct, stake: int = 1_000 * WAD, services: int = 1, tee=ZERO, endpoint="https://n.example"):
        self.fund_stake(acct, stake)
        return self.staking.register_node(endpoint, services, REGION, tee, stake, sender=acct)

    def fund(self, funder, amount: int):
        self.rwd.mint(funder, amount, sender=funder)
        self.rwd.approve(self.staking, amount, sender=funder)
        return self.staking.fund_rewards(amount, sender=funder)

    def add_reporters(self, reporters) -> list:
        """Admin adds members (they sit from the next epoch on)."""
        return [self.staking.add_reporter(r, sender=self.admin) for r in reporters]

    def report(self, epoch: int, reporters, samples: dict) -> None:
        """samples: node -> (probes, successes, latency) or a list of one tuple per reporter."""
        for i, r in enumerate(reporters):
            batch = []
            for node, s in samples.items():
                one = s[i] if isinstance(s, list) else s
                if one is None:
                    continue
                batch.append((node, *one))
            if batch:
                self.staking.submit_reports(epoch, batch, sender=r)

    def finalize(self, epoch: int, sender, page: int = 50) -> list:
        self.after_window(epoch)
        txs = []
        while True:
            tx = self.staking.finalize_epoch(epoch, page, sender=sender)
            txs.append(tx)
            if int(self.staking.next_epoch()) > epoch:
                return txs

    def finalize_through(self, epoch: int, sender) -> None:
        for e in range(int(self.staking.next_epoch()), epoch + 1):
            self.finalize(e, sender)


GOOD = (20, 20, 100)
BAD = (20, 2, 1_900)
