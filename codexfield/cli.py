"""The `codexfield` command line: a click group whose subcommands load lazily.

Each subcommand lives beside what it drives (`codexfield/manifest.py` has `pack`, the LDL
package has `license`, ...); this file only names them, so that `codexfield --help` stays
fast and one broken optional dependency cannot take the whole CLI down.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "pack": "codexfield.manifest:pack_command",
    "verify": "codexfield.manifest:verify_command",
    "did": "codexfield.did:did_command",
    "license": "codexfield.ldl.cli:license_group",
    "royalty": "codexfield.royalty:royalty_group",
    "poa": "codexfield.poa:poa_group",
    "index": "codexfield.indexer.cli:index_group",
    "node": "codexfield.node.cli:node_group",
    "invoke": "codexfield.node.cli:invoke_command",
    "keeper": "codexfield.keepers.app:keeper_group",
    "deploy": "codexfield.deploy_cli:deploy_group",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # pragma: no cover - only when an install is broken
            raise click.ClickException(
                f"the '{cmd_name}' command could not load ({exc}); run 'make setup' to reinstall"
            ) from exc
        return getattr(module, attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="codexfield")
def main() -> None:
    """CodexField: capsules, licenses, metered usage, royalties and Proof of Access."""


if __name__ == "__main__":  # pragma: no cover
    main()
