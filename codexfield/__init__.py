"""CodexField: content capsules, licenses, metered usage, royalties and Proof of Access for AI resources."""

__version__ = "0.1.0"
