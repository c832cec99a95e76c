"""Constants of the integration grid (a uniquely named module: every test folder's conftest.py
is imported as `conftest`, so tests must not import from it)."""

LICENSE_PRICE = 2_000  # token units per MU (licence)
NODE_PRICE = 1_000  # token units per MU (node)
DEPOSIT = 10**9
