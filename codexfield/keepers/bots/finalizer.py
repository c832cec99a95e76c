"""Silverback finalizer: sweep protocol fees, finalize ended epochs page by page.

silverback run codexfield.keepers.bots.finalizer --network ethereum:sepolia:node --account keeper
"""

from silverback import SilverbackBot

from codexfield.keepers.bots._common import make_keeper

bot = SilverbackBot(signer_required=True)
finalizer = make_keeper("finalizer", bot)


@bot.cron("*/5 * * * *")
def finalize(time):
    return {"finalized": finalizer.run_once()}
