"""`codexfield node serve ...` (operator: the gateway, codexfield/node/gateway.py) and `codexfield invoke ...` (consumer).

    codexfield node serve --capsule 2 --model out/model --network ethereum:sepolia:node --account node1 \
        --port 8700 --public-url https://node1.example --price 1000
    codexfield invoke --capsule 2 --credential 7 --node https://node1.example \
        --network ethereum:sepolia:node --account me "my parcel never arrived"
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from codexfield.cli.options import network_option
from codexfield.constants import METER_MAX_BATCH


def _home() -> Path:
    return Path(os.environ.get("CODEXFIELD_HOME", Path.home() / ".codexfield"))


@click.group("node")
def node_group() -> None:
    """Run a CodexField node gateway."""


@node_group.command("serve")
@click.option("--capsule", "capsule_id", type=int, required=True, help="The model capsule to serve.")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="The capsule's directory (capsule.toml declares its [runtime]: onnx, python, dataset; "
    "the demo's classifier needs none), or the demo model's CAR (codexfield pack --car).",
)
@network_option()
@click.option("--account", "account_alias", required=True, help="The node's ape account (or TEST::<n>).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
@click.option("--public-url", default=None, help="Endpoint registered in AccessStaking (default http://HOST:PORT).")
@click.option(
    "--price",
    "price_per_mu",
    default=1_000,
    show_default=True,
    type=int,
    help="Node price per MU, in payment-token units.",
)
@click.option("--stake", default=None, type=int, help="Stake to register with (default: the minimum stake).")
@click.option("--region", default="local", show_default=True)
@click.option("--state", "state_path", default=None, help="Node state file (default ~/.codexfield/node-...).")
@click.option(
    "--batch",
    "batch_size",
    default=METER_MAX_BATCH,
    show_default=True,
    type=click.IntRange(1, METER_MAX_BATCH),
    help="Ingest as soon as this many channels have unsettled calls (else at --max-age).",
)
@click.option("--max-age", default=30.0, show_default=True, help="Seconds before a queued voucher is ingested.")
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Check the model directory against the capsule's on-chain content hash first.",
)
@click.option("--register/--no-register", default=True, show_default=True, help="Register in AccessStaking if needed.")
def serve_command(
    capsule_id,
    model_dir,
    network,
    account_alias,
    host,
    port,
    public_url,
    price_per_mu,
    stake,
    region,
    state_path,
    batch_size,
    max_age,
    verify,
    register,
):
    """Serve invocations of CAPSULE for signed cumulative vouchers; ingest them in batches."""
    from codexfield.deployments import connected, contract, load_account
    from codexfield.keepers.base import setup_logging
    from codexfield.node.gateway import Gateway, serve_forever
    from codexfield.node.runtimes import CapsuleError, load_capsule
    from codexfield.node.store import NodeStore

    try:
        runtime = load_capsule(model_dir)
    except CapsuleError as exc:
        raise click.ClickException(str(exc)) from None
    setup_logging()
    with connected(network) as book:
        names = ("LicenseManager", "UsageMeter", "AccessStaking", "IdentityRegistry", "CapsuleRegistry")
        contracts = {n: contract(n, book) for n in names}
        if verify:
            from codexfield.manifest import verify_capsule

            report = verify_capsule(model_dir, contracts["CapsuleRegistry"], capsule_id)
            if not report.ok:
                raise click.ClickException(
                    f"{model_dir} is not capsule {capsule_id}:\n{report.describe()}\n"
                    "serve the exact files that were minted, or pass --no-verify"
                )
        account = load_account(account_alias)
        path = (
            Path(state_path)
            if state_path
            else _home() / f"node-{book.chain_id}-{capsule_id}-{account.address[:10]}.sqlite"
        )
        gateway = Gateway(
            capsule_id=capsule_id,
            model=runtime,
            account=account,
            contracts=contracts,
            store=NodeStore(path),
            price_per_mu=price_per_mu,
            batch_size=batch_size,
            max_age_s=max_age,
        )
        if register:
            staking = contracts["AccessStaking"]
            amount = stake if stake is not None else int(staking.params().min_stake)
            try:
                click.echo(gateway.ensure_registered(public_url or f"http://{host}:{port}", amount, region=region))
            except RuntimeError as exc:
                raise click.ClickException(str(exc)) from None
        serve_forever(gateway, host, port)


def _check_credential(book, credential_id: int, account) -> None:
    """Refuse, before signing anything, a credential that is unknown, not the account's, revoked or expired."""
    from ape import chain
    from ape.exceptions import ContractLogicError

    from codexfield.deployments import contract

    try:
        c = contract("LicenseManager", book).credential(credential_id)
    except ContractLogicError:
        c = None
    if c is None or int(c.terms_id) == 0:
        raise click.ClickException(f"no credential {credential_id}; buy one with 'codexfield license purchase TERMS'")
    now = int(chain.pending_timestamp)
    if str(c.holder).lower() != account.address.lower():
        raise click.ClickException(f"credential {credential_id} is held by {c.holder}, not {account.address}")
    if int(c.revoked_at) and int(c.revoked_at) <= now:
        raise click.ClickException(
            f"credential {credential_id} was revoked; buy a new one with "
            f"'codexfield license purchase {int(c.terms_id)}'"
        )
    if int(c.expires_at) and int(c.expires_at) <= now:
        raise click.ClickException(
            f"credential {credential_id} expired at {int(c.expires_at)}; buy a new one with "
            f"'codexfield license purchase {int(c.terms_id)}'"
        )


@click.command("invoke")
@click.argument("text")
@click.option("--capsule", "capsule_id", type=int, required=True, help="The capsule you expect the node to serve.")
@click.option("--credential", "credential_id", type=int, required=True, help="Your credential id.")
@click.option("--node", "node_url", required=True, help="The node's URL.")
@network_option()
@click.option("--account", "account_alias", required=True, help="The credential holder (ape alias or TEST::<n>).")
@click.option(
    "--hot-key",
    envvar="CODEXFIELD_HOT_KEY",
    default=None,
    help="Private key of a sigAuth delegate that signs vouchers (default: the TEST account's own key).",
)
@click.option("--ledger", "ledger_path", default=None, help="Voucher ledger (default ~/.codexfield/ledger.sqlite).")
@click.option("--max-price", type=int, default=None, help="Refuse nodes asking more per MU (token units).")
@click.option("--json", "as_json", is_flag=True, help="TEXT is a JSON input (onnx rows, a dataset query, ...).")
def invoke_command(
    text, capsule_id, credential_id, node_url, network, account_alias, hot_key, ledger_path, max_price, as_json
):
    """Invoke a capsule on a node, paying with the next signed cumulative voucher."""
    from codexfield.deployments import connected, contract, load_account
    from codexfield.node.client import ChannelOutOfSync, NodeClient, NodeError, NodeUnavailable
    from codexfield.sdk.metering import ConsumerLedger, Domain

    payload = text
    if as_json:
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise click.ClickException(f"--json: TEXT is not JSON ({exc})") from None
    with connected(network) as book:
        account = load_account(account_alias)
        key = hot_key or getattr(account, "private_key", None)
        if not key:
            raise click.ClickException(
                "this account cannot export its key: pass --hot-key (a sigAuth delegate "
                "registered with 'IdentityRegistry.addDelegate')"
            )
        meter = contract("UsageMeter", book)
        ledger = ConsumerLedger(
            Path(ledger_path) if ledger_path else _home() / "ledger.sqlite",
            Domain.of(meter),
            key,
            payer=account.address,
        )
        _check_credential(book, credential_id, account)
        client = NodeClient(node_url, ledger)
        try:
            try:
                health = client.health()
            except (OSError, NodeUnavailable) as exc:  # requests' ConnectionError/Timeout are OSErrors
                raise click.ClickException(
                    f"the node at {node_url} does not answer ({type(exc).__name__}); check "
                    f"--node, or pick another with 'codexfield poa nodes'"
                ) from None
            if int(health["capsule"]) != capsule_id:
                raise click.ClickException(f"{node_url} serves capsule {health['capsule']}, not {capsule_id}")
            out = client.invoke(credential_id, payload, max_price_per_mu=max_price)
        except (NodeError, ChannelOutOfSync) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(json.dumps(out, indent=2))
