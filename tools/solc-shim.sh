#!/usr/bin/env bash
# `solc` for ape-solidity / py-solc-x, backed by the npm package `solc` (solcjs).
# Answers `--version` in native solc's format (py-solc-x parses it) and otherwise runs solcjs,
# dropping the `>>>` banner lines solcjs prints. Installed by `make setup` as .tools/bin/solc.
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
SOLCJS="$ROOT/node_modules/solc/solc.js"
if [[ "${1:-}" == "--version" ]]; then
  v="$(node "$SOLCJS" --version)"
  echo "solc, the solidity compiler commandline interface"
  echo "Version: ${v%%.Emscripten*}.Linux.g++"
  exit 0
fi
# solcjs ends with process.exit(), which truncates a piped stdout at 64 KiB (Node writes to
# pipes asynchronously): write to a file first, then filter it.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
rc=0
node "$SOLCJS" "$@" > "$out" || rc=$?
grep -v '^>>>' "$out" || true
exit "$rc"
