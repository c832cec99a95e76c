"""Builders the tests share, on the package's own types (one home for each test definition).

    support.system    `System`: the deployed contracts by name (from codexfield.deploy's address book)
    support.terms     `terms(capsule_id, token, **fields)` -> codexfield.ldl.terms.Terms
    support.vouchers  `voucher(...)` -> codexfield.sdk.metering.Voucher, `sign(v, domain, key)`
    support.signers   the private key of an ape test account / eth-account key, fresh keys

Import as `from support import terms` (tests/ is on sys.path through tests/conftest.py).
"""
