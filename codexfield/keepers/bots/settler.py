"""Silverback settler: on every RoyaltyCredited, propagate leaf-to-root in batches.

    silverback run codexfield.keepers.bots.settler --network ethereum:sepolia:node --account keeper

The event only wakes the keeper; the work (and its crash safety) is `Settler.run_once`,
which scans from its own durable position, so missed or replayed events change nothing.
"""

from silverback import SilverbackBot

from codexfield.deployments import contract, current
from codexfield.keepers.bots._common import make_keeper

bot = SilverbackBot(signer_required=True)
router = contract("RoyaltyRouter", current())
settler = make_keeper("settler", bot)


@bot.on_(router.RoyaltyCredited)
def on_credit(log):
    if getattr(log, "removed", False):  # reorged away: the scan from the durable position decides
        return {"skipped": True}
    settler.note_credit(int(log.capsule_id), str(log.token))
    return {"batches": settler.run_once()}


@bot.cron("*/5 * * * *")
def sweep_up(time):
    return {"batches": settler.run_once()}
