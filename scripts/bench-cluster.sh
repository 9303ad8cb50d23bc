#!/usr/bin/env bash
# Cluster numbers for the notes (not part of CI), with the load harness on this machine:
#  A. `rempart serve` (embedded queue and state),
#  B. `rempart edge` + `rempart relay` on NATS, the scanner inside the edge,
#  C. the 3-tier cluster: `rempart edge` + `rempart scanner` (gRPC) + `rempart relay` on NATS.
# For each: the closed-loop throughput (32 sessions of 10 messages) and the end-of-DATA
# latency at a fixed 200 msg/s; B vs C is the cost of the gRPC hop.
#   usage: scripts/bench-cluster.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
cargo build --release -q -p rempart -p rempart-loadtest
bin=target/release
. scripts/bench-common.sh

sink_port=$(free_port)
nats_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >/dev/null 2>&1 &
pids+=($!)
wait_port "$nats_port"

config() { # name bus state extra → config path (listening on $smtp_port)
    cat > "$work/$1.toml" <<TOML
[smtp]
hostname = "bench.rempart"
max_connections = 5000
max_connections_per_ip = 5000
[[smtp.listener]]
address = "127.0.0.1:$smtp_port"
[queue]
data_dir = "$work/data-$1"
[relay]
concurrency = 32
[bus]
backend = "$2"
nats_url = "nats://127.0.0.1:$nats_port"
[state]
backend = "$3"
nats_url = "nats://127.0.0.1:$nats_port"
nats_bucket = "state-$1"
[dns]
offline = true
[greylist]
enabled = false
$4
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:$sink_port"
TOML
    echo "$work/$1.toml"
}
start() { # role config
    RUST_LOG=warn $bin/rempart "$1" --config "$2" >/dev/null 2>>"$work/rempart.log" &
    pids+=($!)
    started+=($!)
}
stop_all() { kill "${started[@]}" 2>/dev/null || true; wait "${started[@]}" 2>/dev/null || true; started=(); }
measure() { # label
    $bin/rempart-loadtest run --target "127.0.0.1:$smtp_port" --sink-listen "127.0.0.1:$sink_port" --scenario steady \
        --rate 0 --sessions 32 --ramp 0s --steady "${secs}s" --out "$work/$1-closed" >/dev/null 2>>"$work/lt.log" || true
    $bin/rempart-loadtest run --target "127.0.0.1:$smtp_port" --sink-listen "127.0.0.1:$sink_port" --scenario steady \
        --rate 200 --ramp 0s --steady "${secs}s" --out "$work/$1-200" >/dev/null 2>>"$work/lt.log" || true
    printf '%-34s closed loop %7.1f accepted/s (lost %s) | at 200 msg/s: end-of-DATA p50 %6.2f ms p99 %7.2f ms (lost %s)\n' "$1" \
        "$(json "$work/$1-closed/report.json" 'r["accepted_per_second"]')" "$(json "$work/$1-closed/report.json" 'r["reconciliation"]["lost"]')" \
        "$(json "$work/$1-200/report.json" 'r["latency"]["end_of_data"]["p50_ms"]')" "$(json "$work/$1-200/report.json" 'r["latency"]["end_of_data"]["p99_ms"]')" \
        "$(json "$work/$1-200/report.json" 'r["reconciliation"]["lost"]')"
}
started=()

smtp_port=$(free_port)
cfg=$(config serve embedded embedded "")
start serve "$cfg"; wait_port "$smtp_port"
measure "A serve (embedded)"
stop_all

smtp_port=$(free_port)
cfg=$(config twotier nats nats "")
start relay "$cfg"; start edge "$cfg"; wait_port "$smtp_port"
measure "B edge+relay on NATS (scanner in edge)"
stop_all

scanner_port=$(free_port)
smtp_port=$(free_port)
cfg=$(config threetier nats nats "[scanner]
endpoints = [\"http://127.0.0.1:$scanner_port\"]
listen = \"127.0.0.1:$scanner_port\"")
start scanner "$cfg"; wait_port "$scanner_port"
start relay "$cfg"; start edge "$cfg"; wait_port "$smtp_port"
measure "C edge+scanner+relay (gRPC) on NATS"
stop_all
