"""Constants of the integration grid (a uniquely named module: every test folder's conftest.py
is imported as `conftest`, so tests must not import from it)."""

LICENSE_PRICE = 2_000  # token units per MU (licence)
NODE_PRICE = 1_000  # token units per MU (node)
DEPOSIT = 10**9


def deposit(grid, admin, who: str, amount: int) -> None:
    """Mint `amount` of the grid's USDC to `admin` and deposit it as `who`'s escrow in the meter."""
    grid.usdc.mint(admin, amount, sender=admin)
    grid.usdc.approve(grid.c["UsageMeter"], amount, sender=admin)
    grid.c["UsageMeter"].deposit(grid.usdc, amount, who, sender=admin)


def fresh_consumer(grid, admin, escrow: int):
    """A new key holding a credential of the grid's terms and `escrow` in the meter."""
    from eth_account import Account

    acct = Account.create()
    cred = int(grid.c["LicenseManager"].purchase(grid.terms_id, acct.address, 0, sender=admin).return_value)
    if escrow:
        deposit(grid, admin, acct.address, escrow)
    return acct, cred


def next_voucher(url: str, ledger, credential: int, text: str):
    """Quote `text` at the gateway and sign the exact next voucher of the channel with `ledger`."""
    import requests

    q = requests.get(url + "/quote", params={"credential": credential, "input_len": len(text)}).json()
    return ledger.next_voucher(
        credential,
        q["node"],
        mu=q["mu"],
        purpose=int(q["purpose"]),
        node_price_per_mu=int(q["node_price_per_mu"]),
        deadline=q["min_deadline"] + 600,
        issued_at=int(q["chain_time"]),
    )


def settled(grid, node: str, credential: int, payer: str) -> tuple[int, int, int, int]:
    """The meter's settled (MU, calls, failures, latency) of the channel (credential, node, payer)."""
    return tuple(int(x) for x in grid.c["UsageMeter"].settled(credential, node, payer))[:4]
