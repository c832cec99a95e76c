"""`ape run deploy`: deploy, wire, hand over and verify CodexField on any ape network.

    ape run deploy --network ethereum:local:foundry --test-tokens        # deployer: TEST::0
    ape run deploy --network ethereum:sepolia:node --account deployer --yes \
        --stake-token 0x... --reward-token 0x... --proposer 0xSAFE... --reporter 0x... [--dry-run]

Thin: the command is `codexfield.cli.deploy.deploy_command` (also `codexfield deploy run`),
the work is in `codexfield.deploy`.
"""

from codexfield.cli.deploy import deploy_command

cli = deploy_command
