"""Silverback apps of the keepers. Importing one connects to the network silverback was
started with (`silverback run codexfield.keepers.bots.<name> --network ... --account ...`)."""
