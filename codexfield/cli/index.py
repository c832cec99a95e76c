"""`codexfield index run|serve|status|migrate`: the catalog's commands (the work is codexfield.indexer).

    codexfield index migrate [--db URL]
    codexfield index run --network ethereum:local:foundry [--rpc URL] [--confirmations 12] [--once]
    codexfield index serve [--host 127.0.0.1 --port 8700]
    codexfield index status [--json]

`--db` defaults to `$CODEXFIELD_INDEX_DB`, else `~/.codexfield/index.db` (SQLite); a
`postgresql://` URL selects PostgreSQL. The address book of the network names the contracts.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from codexfield.cli.options import network_option
from codexfield.indexer.service import run_cycle

db_option = click.option(
    "--db",
    "db",
    default=None,
    envvar="CODEXFIELD_INDEX_DB",
    help="database URL or SQLite file (default ~/.codexfield/index.db)",
)


def _engine(db):
    from codexfield.indexer.db import current_revision, make_engine, migrate

    engine = make_engine(db)
    if current_revision(engine) is None:
        migrate(engine)
    return engine


@click.group("index")
def index_group() -> None:
    """The catalog indexer: events to SQL, search and lineage over HTTP."""


@index_group.command("migrate")
@db_option
@click.option("--revision", default="head", show_default=True)
def migrate_command(db, revision):
    """Create or upgrade the catalog schema (Alembic)."""
    from codexfield.indexer.db import current_revision, database_url, make_engine, migrate

    engine = make_engine(db)
    migrate(engine, revision)
    click.echo(f"{database_url(db).split('@')[-1]}: schema at revision {current_revision(engine)}")


@index_group.command("run")
@db_option
@network_option(help="ape network choice")
@click.option("--rpc", default=None, help="JSON-RPC URL (default: ape's provider for --network)")
@click.option(
    "--book",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="address book JSON (default deployments/<ecosystem>-<network>.json)",
)
@click.option("--confirmations", default=12, show_default=True, type=click.IntRange(0))
@click.option("--batch", "batch_size", default=1000, show_default=True, type=click.IntRange(1))
@click.option(
    "--journal-depth",
    default=10_000,
    show_default=True,
    type=click.IntRange(1),
    help="blocks of undo journal kept (the deepest reorg handled)",
)
@click.option("--store", "store_spec", default=None, help="manifest store (path, file://, kubo+http://...)")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0), help="seconds between polls")
@click.option(
    "--max-backoff",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="longest wait between retries after failures (exponential back-off)",
)
@click.option("--health-host", default="127.0.0.1", show_default=True)
@click.option(
    "--health-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="serve GET /health on this port (off by default; 0 picks a free port)",
)
@click.option("--once", is_flag=True, help="catch up once and exit")
def run_command(
    db,
    network,
    rpc,
    book,
    confirmations,
    batch_size,
    journal_depth,
    store_spec,
    interval,
    max_backoff,
    health_host,
    health_port,
    once,
):
    """Follow the chain into the catalog as a service (Ctrl-C to stop; restarts resume from the
    checkpoint). RPC and database failures are retried with back-off; it exits non-zero only on
    a reorg deeper than the journal. Logs are JSON lines on stderr."""
    from codexfield import deployments
    from codexfield.indexer.ingest import DeepReorg, Web3Source, indexer_for_book
    from codexfield.indexer.manifests import ManifestWorker
    from codexfield.indexer.service import Follower, HealthServer, log_event
    from codexfield.indexer.tokens import TokenWorker
    from codexfield.keepers.base import setup_logging
    from codexfield.store import open_store

    setup_logging()
    engine = _engine(db)

    def go(source, address_book):
        state: dict = {}

        def cycle() -> dict:
            if "indexer" not in state:  # built inside the retried cycle: the RPC may be down at start
                state["indexer"] = indexer_for_book(
                    engine,
                    source,
                    address_book,
                    confirmations=confirmations,
                    batch_size=batch_size,
                    journal_depth=journal_depth,
                )
                state["worker"] = ManifestWorker(engine, store=open_store(store_spec))
                state["tokens"] = TokenWorker(engine, source, address_book.chain_id, token_list=address_book.tokens)
            return run_cycle(state["indexer"], state["worker"], engine, tokens=state["tokens"])

        follower = Follower(
            cycle,
            chain_id=address_book.chain_id,
            interval=interval,
            max_delay=max_backoff,
            once=once,
            max_failures=5 if once else None,
        )
        health = HealthServer(follower, health_host, health_port).start() if health_port is not None else None
        if health is not None:
            log_event("health", url=f"http://{health_host}:{health.port}/health")
        try:
            follower.run()
        except DeepReorg:
            raise
        except Exception as exc:  # --once gave up after its retries
            raise click.ClickException(f"chain {address_book.chain_id}: {follower.health.last_error}") from exc
        finally:
            if health is not None:
                health.stop()
        if once and follower.last is not None:
            r = follower.last
            click.echo(
                f"chain {address_book.chain_id}: block {r['checkpoint']}, +{r['applied']} events, "
                f"manifests {r['manifests'] or '-'}"
            )

    def load_book():
        if book:
            try:
                data = json.loads(book.read_text())
                return deployments.AddressBook(
                    chain_id=int(data["chain_id"]),
                    block=int(data.get("block", 0)),
                    contracts=dict(data.get("contracts", {})),
                    path=book,
                )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise click.ClickException(
                    f"{book}: not an address book ({type(exc).__name__}: {exc}); "
                    "expected JSON with chain_id, block and contracts"
                ) from None
        eco, net = (network.split(":") + ["", ""])[:2]
        return deployments.load(eco, net)

    try:
        if rpc:
            go(Web3Source.from_url(rpc), load_book())
        else:
            with deployments.connected(network) as address_book:
                from ape import networks

                go(Web3Source(networks.provider.web3), load_book() if book else address_book)
    except deployments.AddressBookError as exc:
        raise click.ClickException(str(exc)) from None
    except DeepReorg as exc:
        raise click.ClickException(f"unrecoverable: {exc}") from None
    except KeyboardInterrupt:  # pragma: no cover
        click.echo("stopped; the next run resumes from the last checkpoint", err=True)


@index_group.command("serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
def serve_command(db, host, port):
    """Serve the HTTP API and the catalog page (OpenAPI at /openapi.json)."""
    import uvicorn

    from codexfield.indexer.api import create_app

    uvicorn.run(create_app(_engine(db)), host=host, port=port, log_level="info")


@index_group.command("status")
@db_option
@click.option("--json", "as_json", is_flag=True)
def status_command(db, as_json):
    """Per chain: head, indexed block, lag; the manifest retry queue."""
    from codexfield.indexer import queries

    engine = _engine(db)
    with engine.connect() as conn:
        s = queries.status(conn)
    if as_json:
        click.echo(json.dumps(s, indent=2, default=str))
        return
    if not s["chains"]:
        click.echo("no chain indexed yet; run 'codexfield index run --network ...'")
    for c in s["chains"]:
        click.echo(
            f"chain {c['chain_id']}: head {c['head']}, indexed {c['indexed_block']}, lag {c['lag']}, "
            f"reorgs {c['reorgs']}"
        )
    click.echo(
        f"capsules: {s['capsules']}; manifests: "
        + (", ".join(f"{k} {v}" for k, v in sorted(s["manifests"].items())) or "none")
    )
    for item in s["retry_queue"]:
        click.echo(
            f"  {item['status']:6} {item['cid']} attempts {item['attempts']} [{item['error_kind']}] "
            f"{(item['last_error'] or '')[:100]}"
        )


if __name__ == "__main__":  # python -m codexfield.cli.index ...
    index_group()
