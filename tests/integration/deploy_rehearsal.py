"""A rehearsal testnet for the deploy tests: its own anvil with a testnet's chain id, a scratch ape
data folder with the deployer imported as a keyfile account, real ERC-20s, and helpers that run
the deployer's commands as subprocesses and read the chain with web3 (no ape session involved).
(A uniquely named module: tests must not import from conftest.py.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from eth_abi import encode
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
ANVIL = Path("/work/main/.tools/bin/anvil")
if not ANVIL.exists():  # pragma: no cover - other checkouts: the project's .tools
    ANVIL = ROOT / ".tools" / "bin" / "anvil"
APE = ROOT / ".venv" / "bin" / "ape"
# anvil's well-known dev keys (mnemonic "test test ... junk"): #0 deploys, #9 pays for tokens.
DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
UNFUNDED_KEY = "0x" + "11" * 32
PASSPHRASE = "rehearsal-passphrase-1!"
ROLE_HOLDERS = {  # anvil dev accounts #1..#8 as the named role holders
    "SAFE": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "GUARDIAN": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "ARBITER": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "AUDITOR": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "REPORTER_1": "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "REPORTER_2": "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "REPORTER_3": "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
}
REHEARSAL_CONFIG = (
    "ethereum:\n  sepolia:\n    block_time: 1\n    required_confirmations: 1\n"
    "  base-sepolia:\n    block_time: 1\n    required_confirmations: 1\n"
)
PAYER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # anvil #9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def artifact(name: str) -> dict:
    data = json.loads((ROOT / ".build" / "__local__.json").read_text())
    return data["contractTypes"][name]


@dataclass
class Rehearsal:
    chain_id: int
    port: int
    proc: subprocess.Popen
    ape_data: Path
    books: Path
    w3: Web3
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APE_") and not k.endswith("_RPC_URL")}
        env.update(
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            APE_DATA_FOLDER=str(self.ape_data),
            CODEXFIELD_DEPLOYMENTS=str(self.books),
            SEPOLIA_RPC_URL=self.url,
            BASE_SEPOLIA_RPC_URL=self.url,
            APE_ACCOUNTS_deployer_PASSPHRASE=PASSPHRASE,
            APE_ACCOUNTS_poor_PASSPHRASE=PASSPHRASE,
            STAKE_TOKEN=self.tokens["CDX"],
            USDC=self.tokens["USDC"],
            PAYMENT_TOKEN=self.tokens["EURC"],
            **ROLE_HOLDERS,
        )
        env.update(extra)
        return env

    def bash(self, command: str, timeout: int = 600, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def nonce(self, who: str = DEPLOYER) -> int:
        return self.w3.eth.get_transaction_count(who, "pending")

    def book(self, network: str) -> dict:
        return json.loads((self.books / f"ethereum-{network}.json").read_text())

    def contract(self, name: str, address: str):
        return self.w3.eth.contract(address=address, abi=artifact(name)["abi"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()


def _deploy_token(w3: Web3, name: str, symbol: str, decimals: int) -> str:
    bytecode = artifact("MockERC20")["deploymentBytecode"]["bytecode"]
    data = bytecode + encode(["string", "string", "uint8"], [name, symbol, decimals]).hex()
    tx = w3.eth.send_transaction({"from": PAYER, "data": data})
    return w3.eth.wait_for_transaction_receipt(tx, timeout=60)["contractAddress"]


def import_account(ape_data: Path, alias: str, key: str) -> None:
    """`ape accounts import <alias>` without a terminal: the key and passphrase on stdin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APE_")}
    env["APE_DATA_FOLDER"] = str(ape_data)
    out = subprocess.run(
        [str(APE), "accounts", "import", alias],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        input=f"{key}\n{PASSPHRASE}\n{PASSPHRASE}\n",
        timeout=120,
        start_new_session=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def start(tmp: Path, chain_id: int, *, optimism: bool = False, accounts: bool = True) -> Rehearsal:
    """anvil with `chain_id` on a free loopback port, tokens, ape data folder. Mixed mining: each
    transaction is mined at once and a block follows every second, so ape's wait for one
    confirmation is real but short."""
    tmp.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        port = free_port()
        cmd = [
            str(ANVIL),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(chain_id),
            "--block-time",
            "1",
            "--mixed-mining",
            "--silent",
        ] + (["--optimism"] if optimism else [])
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 30}))
        for _ in range(100):
            if proc.poll() is not None:
                break
            try:
                if w3.eth.chain_id == chain_id:
                    break
            except Exception:
                time.sleep(0.1)
        if proc.poll() is None:
            break
    else:  # pragma: no cover
        raise RuntimeError("anvil did not start")
    ape_data = tmp / "ape"
    ape_data.mkdir(exist_ok=True)
    # ape's Sepolia defaults poll every 7 s for 2 confirmations of 15 s blocks; the rehearsal
    # chain has 1 s blocks: poll at that pace and wait for one confirmation (docs/operate.md).
    (ape_data / "ape-config.yaml").write_text(REHEARSAL_CONFIG)
    if accounts:
        import_account(ape_data, "deployer", DEPLOYER_KEY)
    tokens = {
        "CDX": _deploy_token(w3, "CodexField Stake", "CDX", 18),
        "USDC": _deploy_token(w3, "USD Coin", "USDC", 6),
        "EURC": _deploy_token(w3, "Euro Coin", "EURC", 6),
    }
    books = tmp / "deployments"
    books.mkdir(exist_ok=True)
    return Rehearsal(chain_id, port, proc, ape_data, books, w3, tokens)


def readme_deploy_block() -> list[str]:
    """The shell commands of README's "Deploy" section's testnet block (continuations joined)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Deploy", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        line = line.split("  #", 1)[0].rstrip() if not line.strip().startswith("#") else ""
        if not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            commands.append(current.strip())
            current = ""
    return commands


def run_killed(r: Rehearsal, command: str, marker: str, delay: float = 0.0, timeout: float = 300) -> str:
    """Start `command`, SIGKILL its process group `delay` s after `marker` appears in its output."""
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=ROOT,
        env=r.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    seen = []
    t0 = time.monotonic()
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        if time.monotonic() - t0 > timeout:  # pragma: no cover
            break
    proc.wait(30)
    out = "".join(seen)
    assert marker in out, out
    return out
