"""`ape run deploy`: deploy and wire CodexField on any ape network (idempotent).

    ape run deploy --network ethereum:local:foundry --test-tokens      # deployer: TEST::0
    ape run deploy --network ethereum:sepolia:node --account deployer \
        --stake-token 0x... --reward-token 0x... --admin 0xTIMELOCK [--dry-run]

Thin: the work is in `codexfield.deploy`.
"""

import click
from ape.cli import ConnectedProviderCommand, account_option

from codexfield.deploy import DeployConfig, deploy_system


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@click.option("--admin", default=None, help="Governance address (a timelock) that receives every admin role.")
@click.option("--treasury", default=None, help="Receiver of non-reward-token fees (default: admin); slashed stake never goes here.")
@click.option("--test-tokens", is_flag=True, help="Deploy MockERC20 USDC and CDX first (local chains).")
@click.option("--stake-token", default=None, help="Existing ERC-20 used for node stake.")
@click.option("--reward-token", default=None, help="Existing ERC-20 (e.g. USDC) for rewards and payments.")
@click.option("--reporter", "reporters", multiple=True, help="Address granted the REPORTER role (repeatable).")
@click.option("--epoch-length", default=3600, show_default=True, type=int, help="Seconds per epoch.")
@click.option("--dry-run", is_flag=True, help="Print the plan with gas estimates; send nothing.")
def cli(account, admin, treasury, test_tokens, stake_token, reward_token, reporters, epoch_length, dry_run):
    """Deploy every CodexField contract in dependency order and write the address book."""
    from ape import accounts, networks

    if account is None:
        if networks.provider.network.name != "local":
            raise click.UsageError("name the deployer with --account ALIAS (see 'ape accounts list')")
        account = accounts.test_accounts[0]  # local chains: the first test account
    config = DeployConfig(
        admin=admin,
        treasury=treasury,
        test_tokens=test_tokens,
        stake_token=stake_token,
        reward_token=reward_token,
        reporters=list(reporters),
        epoch_length=epoch_length,
    )
    deploy_system(account, config, dry_run=dry_run, log=click.echo)
