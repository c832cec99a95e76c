"""Silverback prober: probe node endpoints every minute, report finished epochs.

silverback run codexfield.keepers.bots.prober --network ethereum:sepolia:node --account reporter1
"""

from silverback import SilverbackBot

from codexfield.keepers.bots._common import make_keeper

bot = SilverbackBot(signer_required=True)
prober = make_keeper("prober", bot)


@bot.cron("* * * * *")
def probe_and_report(time):
    prober.probe()
    return {"reported": prober.report()}
