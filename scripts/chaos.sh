#!/usr/bin/env bash
# Chaos run (issue 30): a 3-node NATS JetStream cluster (replicas 3) under an edge, a
# scanner, a relay and a console, loaded by SMTP clients without pause; each role and
# one NATS node killed with SIGKILL in turn, KILLS times in all (default 20), then
# every message answered 250 must arrive. Prints the counts:
#   chaos: 20 kills in …; N accepted, R tries refused or cut, 0 missing, D duplicates
# CI runs the same test with 5 kills.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --workspace --locked
REMPART_CHAOS_KILLS="${KILLS:-20}" cargo nextest run -p rempart-tests --locked --no-capture \
    -E 'test(=chaos::kill_9_of_each_role_and_a_nats_node_in_a_3_node_cluster_loses_nothing)' 2>&1 | grep -E '^chaos:|PASS|FAIL|panicked|missing'
