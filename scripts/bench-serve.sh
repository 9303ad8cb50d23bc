#!/usr/bin/env bash
# Measures messages/s through `rempart serve` to a sink, with and without fsync, using
# Postfix's smtp-source (client) and smtp-sink (customer server). Not part of CI.
# The baseline is smtp-source straight into smtp-sink in the same run, so results are
# reported as ratios too (this machine is noisy).
#   usage: scripts/bench-serve.sh [messages] [sessions] [size-bytes]
#   REMPART_BIN=path: measure that binary instead of building target/release/rempart
#   (to compare two versions in one run of the same machine).
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-5000}; sessions=${2:-20}; size=${3:-10240}

. scripts/bench-common.sh
need_postfix
rempart_bin=${REMPART_BIN:-target/release/rempart}
[ -n "${REMPART_BIN:-}" ] || cargo build --release -q -p rempart

now() { date +%s.%N; }

sink_port=$(free_port)
start_sink "$sink_port"

send() { smtp-source -s "$sessions" -l "$size" -m "$messages" -f bench@sender.example -t alice@example.com "127.0.0.1:$1"; }

start=$(now); send "$sink_port"; baseline=$(echo "$messages / ($(now) - $start)" | bc -l)
printf 'baseline smtp-source -> smtp-sink: %.0f msg/s\n' "$baseline"

# scanner on (DNS checks offline: a bench reaches no network) and off, fsync on and off.
for mode in "true true" "true false" "false true"; do
    set -- $mode; fsync=$1; scanner=$2
    port=$(free_port)
    cat > "$work/rempart-$fsync.toml" <<TOML
[smtp]
hostname = "bench.rempart"
max_connections_per_ip = 1000
[[smtp.listener]]
address = "127.0.0.1:$port"
[queue]
data_dir = "$work/data-$fsync"
fsync = $fsync
[relay]
concurrency = 32
[scanner]
enabled = $scanner
[dns]
offline = true
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:$sink_port"
TOML
    RUST_LOG=warn "$rempart_bin" serve --config "$work/rempart-$fsync.toml" 2> "$work/rempart-$fsync.log" &
    rpid=$!; pids+=($rpid)
    wait_port "$port"
    before=$(sink_count)
    start=$(now)
    send "$port"
    accepted=$(now)
    until [ "$(( $(sink_count) - before ))" -ge "$messages" ]; do sleep 0.05; done
    done_at=$(now)
    accept_rate=$(echo "$messages / ($accepted - $start)" | bc -l)
    e2e_rate=$(echo "$messages / ($done_at - $start)" | bc -l)
    printf 'rempart serve fsync=%-5s scanner=%-5s accepted: %.0f msg/s (%.2f x baseline), relayed end to end: %.0f msg/s (%.2f x baseline)\n' \
        "$fsync" "$scanner" "$accept_rate" "$(echo "$accept_rate / $baseline" | bc -l)" "$e2e_rate" "$(echo "$e2e_rate / $baseline" | bc -l)"
    kill "$rpid"; wait "$rpid" 2>/dev/null || true
done
echo "($messages messages of $size bytes, $sessions concurrent sessions, one connection per message; $(nproc) cores)"
