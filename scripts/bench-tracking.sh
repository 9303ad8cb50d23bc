#!/usr/bin/env bash
# Message tracking's ingest against the gateway's own peak, in one run (not CI):
# `rempart serve` (fsync on, scanner on, DNS offline) takes N messages from Postfix's
# smtp-source and relays them to smtp-sink; meanwhile the console folds their events
# (a session event and a delivery event each) into its index. Prints the messages/s
# the gateway accepted and relayed, the events/s tracking folded over the same
# window, and how long after the last relay tracking had all of them.
#   usage: scripts/bench-tracking.sh [messages] [sessions]
#   REMPART_BIN=path: that binary instead of building target/release/rempart
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-20000}; sessions=${2:-40}

. scripts/bench-common.sh
need_postfix
rempart_bin=${REMPART_BIN:-target/release/rempart}
[ -n "${REMPART_BIN:-}" ] || cargo build --release -q -p rempart

now() { date +%s.%N; }

sink_port=$(free_port); port=$(free_port); metrics=$(free_port); console=$(free_port)
start_sink "$sink_port"
tracked() { curl -s "http://127.0.0.1:$metrics/metrics" | awk '/^rempart_tracked_events_total/ {print $2}' | cut -d. -f1; }

cat > "$work/rempart.toml" <<TOML
[smtp]
hostname = "bench.rempart"
max_connections_per_ip = 1000
[[smtp.listener]]
address = "127.0.0.1:$port"
[queue]
data_dir = "$work/data"
[relay]
concurrency = 32
[dns]
offline = true
[telemetry]
listen = "127.0.0.1:$metrics"
[console]
listen = "127.0.0.1:$console"
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:$sink_port"
TOML
RUST_LOG=warn "$rempart_bin" serve --config "$work/rempart.toml" 2> "$work/rempart.log" &
pids+=($!)
wait_port "$port"; wait_port "$metrics"

start=$(now)
smtp-source -s "$sessions" -l 4096 -m "$messages" -f bench@sender.example -t alice@example.com "127.0.0.1:$port"
accepted=$(now)
until [ "$(sink_count)" -ge "$messages" ]; do sleep 0.05; done
relayed=$(now)
events=$((messages * 2))
until [ "${tracked_now:=$(tracked)}" -ge "$events" ] 2>/dev/null; do sleep 0.05; tracked_now=$(tracked); done
caught_up=$(now)
size=$(du -b "$work/data/tracking.redb" | cut -f1)
printf 'gateway: accepted %.0f msg/s, relayed end to end %.0f msg/s\n' \
    "$(echo "$messages / ($accepted - $start)" | bc -l)" "$(echo "$messages / ($relayed - $start)" | bc -l)"
printf 'tracking: %d events folded at %.0f events/s over the same run (%.2f x the events the gateway made per second); all in %.2f s after the last relay\n' \
    "$events" "$(echo "$events / ($caught_up - $start)" | bc -l)" \
    "$(echo "($events / ($caught_up - $start)) / ($events / ($relayed - $start))" | bc -l)" "$(echo "$caught_up - $relayed" | bc -l)"
printf 'index: %.1f MiB for %d messages (%.0f bytes each, as written)\n' "$(echo "$size / 1048576" | bc -l)" "$messages" "$(echo "$size / $messages" | bc -l)"
echo "($messages messages of 4 KiB, $sessions concurrent sessions; $(nproc) cores)"
