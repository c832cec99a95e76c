"""The `codexfield` command line: one click tree, subcommands loaded lazily.

Commands that touch a chain share their options from codexfield/cli/options.py (`--network`,
`--book`, `--account`, `--yes`, `--json`); every failure goes through one handler
(codexfield/cli/errors.py): one line on stderr, a non-zero exit, no traceback. The verbs and
their `--json` shapes are documented in docs/cli.md.
"""

from __future__ import annotations

import importlib

import click

from codexfield.cli.errors import handle

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "pack": "codexfield.cli.manifest:pack_command",
    "verify": "codexfield.cli.manifest:verify_command",
    "did": "codexfield.cli.did:did_command",
    "capsule": "codexfield.cli.capsule:capsule_group",
    "license": "codexfield.cli.license:license_group",
    "escrow": "codexfield.cli.escrow:escrow_group",
    "royalties": "codexfield.cli.royalties:royalties_group",
    "royalty": "codexfield.cli.royalty:royalty_group",
    "rate": "codexfield.cli.reputation:rate_command",
    "attest": "codexfield.cli.reputation:attest_command",
    "poa": "codexfield.cli.poa:poa_group",
    "index": "codexfield.indexer.cli:index_group",
    "node": "codexfield.cli.node:node_group",
    "invoke": "codexfield.node.cli:invoke_command",
    "keeper": "codexfield.cli.keeper:keeper_group",
    "deploy": "codexfield.cli.deploy:deploy_group",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand only when it is used, and turns every
    exception a command raises into one CLI error line (errors.handle)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise click.ClickException(
                f"the '{cmd_name}' command could not load ({exc}); install its extra "
                f"(pip install 'codexfield[node,indexer,bots]') or run 'make setup'"
            ) from None
        return getattr(module, attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.UsageError:
            raise
        except click.exceptions.ClickException as exc:  # one line, whoever raised it
            if "\n" in exc.message:
                exc.message = "; ".join(line.strip() for line in exc.message.splitlines() if line.strip())
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # the single error-handling wrapper
            raise handle(exc) from None


@click.group(cls=LazyGroup)
@click.version_option(package_name="codexfield")
def main() -> None:
    """CodexField: capsules, licenses, metered usage, royalties and Proof of Access."""


if __name__ == "__main__":  # pragma: no cover
    main()
