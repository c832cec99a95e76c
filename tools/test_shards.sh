#!/usr/bin/env bash
# Run the suite as shards side by side, each an `ape test` process with its own anvil (ape-foundry
# `host: auto` picks a free port), its own PostgreSQL schemas and tmp folders: on two cores one
# process alone leaves a core mostly idle (anvil and the tests take turns). Each argument is one
# shard, its test paths separated by commas (the Makefile's TEST_SHARDS). Output lines are prefixed
# with the shard's name and kept in .test-logs/<shard>.log; the exit status is non-zero when any
# shard fails.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .test-logs
pids=() names=()
i=0
for shard in "$@"; do
  i=$((i + 1))
  name="shard-$i"
  read -r -a paths <<<"${shard//,/ }"
  (
    start=$(date +%s)
    ape test "${paths[@]}" -p no:cacheprovider --durations=15 2>&1 | tee ".test-logs/$name.log" | sed -u "s/^/[$name] /"
    status=${PIPESTATUS[0]}
    echo "[$name] ${paths[*]}: exit $status after $(($(date +%s) - start)) s" | tee -a ".test-logs/$name.log"
    exit "$status"
  ) &
  pids+=($!) names+=("$name")
done
failed=0
for k in "${!pids[@]}"; do
  wait "${pids[$k]}" || failed=1
done
[ "$failed" = 0 ] || echo "test_shards: a shard failed (see its [shard-N] lines above, or .test-logs/)"
exit "$failed"
