"""CodexField: content capsules, licenses, metered usage, royalties and Proof of Access for AI resources."""

__version__ = "0.1.0"


def _find_anvil() -> None:
    """Let ape-foundry (which looks `anvil` up on PATH) find the anvil `make setup` installed,
    from a plain shell: when `anvil` is not on PATH, add the checkout's `.tools/bin` or the
    running interpreter's bin directory, whichever has it. Nothing changes when anvil is
    already on PATH or none of those has one."""
    import os
    import shutil
    import sys
    from pathlib import Path

    if shutil.which("anvil"):
        return
    for folder in (Path(__file__).resolve().parents[1] / ".tools" / "bin", Path(sys.executable).parent):
        if (folder / "anvil").is_file() and os.access(folder / "anvil", os.X_OK):
            os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
            return


_find_anvil()
