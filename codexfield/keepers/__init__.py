"""Keeper bots (DESIGN §4.4): settler, prober, finalizer — thin loops over package functions.

`codexfield.keepers.base` (state file, intent log, retries, logs), `settler`, `prober`,
`finalizer`, `app` (CLI), `bots/` (silverback apps: `silverback run codexfield.keepers.bots.settler`).
"""
