#!/usr/bin/env bash
# The management plane at scale: one `rempart serve` with 10 domains in its store and
# one with 10,000 (added through the admin socket, as `rempart domain add` does), in
# the same run: the time to add them, start time and RSS, the time one more change
# takes to be applied, and RCPT latency through the load harness (closed loop, no
# pipelining) against a domain of each, alternating rounds. Not part of CI.
#   usage: scripts/bench-domains.sh [domains] [seconds-per-run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
many=${1:-10000}; seconds=${2:-10}; rounds=${3:-2}
cargo build --release -q -p rempart -p rempart-loadtest

. scripts/bench-common.sh

sink=$(free_port)
now() { date +%s.%N; }
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# api SOCKET METHOD PATH [JSON]: one request on the admin socket.
api() {
    python3 - "$@" <<'PY'
import http.client, socket, sys
class Unix(http.client.HTTPConnection):
    def __init__(self, path): super().__init__("localhost"); self.path = path
    def connect(self): self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(self.path)
c = Unix(sys.argv[1]); body = sys.argv[4] if len(sys.argv) > 4 else None
c.request(sys.argv[2], sys.argv[3], body, {"Content-Type": "application/json"})
r = c.getresponse(); print(r.read().decode())
PY
}

# add_domains SOCKET COUNT: bench.example and COUNT-1 others, over one connection.
add_domains() {
    python3 - "$1" "$2" "$sink" <<'PY'
import http.client, json, socket, sys
class Unix(http.client.HTTPConnection):
    def __init__(self, path): super().__init__("localhost"); self.path = path
    def connect(self): self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(self.path)
c = Unix(sys.argv[1]); count = int(sys.argv[2]); route = f"smtp://127.0.0.1:{sys.argv[3]}"
for i in range(count):
    name = "bench.example" if i == 0 else f"customer{i}.example"
    c.request("POST", "/api/v1/domains", json.dumps({"name": name, "route": route}), {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 201: sys.exit(f"{name}: {r.status}")
PY
}

for i in $(seq 0 199); do echo "user$i@bench.example"; done > "$work/bench.rcpts"
declare -A port pid
started=0
# start_gateway NAME: sets port[NAME], pid[NAME] and `started` (seconds to listen).
start_gateway() {
    local name=$1
    port[$name]=$(free_port)
    cat > "$work/$name.toml" <<TOML
[smtp]
hostname = "bench.rempart"
max_connections_per_ip = 1000
[[smtp.listener]]
address = "127.0.0.1:${port[$name]}"
[queue]
data_dir = "$work/data-$name"
[relay]
concurrency = 32
[greylist]
enabled = false
[scanner]
enabled = false
[dns]
offline = true
[console]
enabled = false
TOML
    local t0; t0=$(now)
    RUST_LOG=info target/release/rempart serve --config "$work/$name.toml" > /dev/null 2> "$work/$name.log" &
    pid[$name]=$!
    pids+=($!)
    # Polled every 5 ms: the start is what is measured.
    for _ in $(seq 2000); do (exec 3<>"/dev/tcp/127.0.0.1/${port[$name]}") 2>/dev/null && break; sleep 0.005; done
    started=$(echo "$(now) - $t0" | bc -l)
}
stop_gateway() { kill "${pid[$1]}"; wait "${pid[$1]}" 2>/dev/null || true; }

for name in few many; do
    count=10; [ "$name" = many ] && count=$many
    start_gateway "$name"
    t0=$(now)
    add_domains "$work/data-$name/admin.sock" "$count"
    added=$(echo "$(now) - $t0" | bc -l)
    stop_gateway "$name"
    start_gateway "$name"
    sleep 1
    printf '%-5s %6d domains: added in %.1f s (%.1f ms each); start %.3f s; RSS %s MiB\n' \
        "$name" "$count" "$added" "$(echo "$added * 1000 / $count" | bc -l)" "$started" "$(rss_mib "${pid[$name]}")"
    # One more change: applied when the log says so.
    t0=$(now)
    version=$(api "$work/data-$name/admin.sock" PUT /api/v1/domains/bench.example '{"max_message_size": 20000000}' \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["config_version"])')
    until grep -q "\"store_version\":$version" "$work/$name.log"; do sleep 0.01; done
    printf '%-5s %6d domains: one change applied in %.0f ms\n' "$name" "$count" "$(echo "($(now) - $t0) * 1000" | bc -l)"
done

cat > "$work/scenario.toml" <<TOML
name = "rcpt"
rate = 0
sessions = 8
ramp = "1s"
steady = "${seconds}s"
messages_per_session = 20
pipelining = false
drain = "30s"
sender = "sender@outside.example"
[mix]
generated = true
sizes = [{ bytes = 2048, weight = 1.0 }]
TOML
run() { # name
    loadtest_json "$1" "127.0.0.1:${port[$1]}" "$work/scenario.toml" --recipients "$work/bench.rcpts"
    json "$work/$1.json" "f\"{r['latency']['rcpt']['p50_ms']:.3f} {r['latency']['rcpt']['p99_ms']:.3f} {r['latency']['rcpt']['count']}\""
}
for round in $(seq "$rounds"); do
    read -r few50 few99 fewn <<< "$(run few)"
    read -r p50 p99 n <<< "$(run many)"
    ratio=$(python3 -c "print(f'{$p50 / $few50:.2f} / {$p99 / $few99:.2f}')")
    echo "round $round: RCPT p50/p99 with 10 domains ${few50}/${few99} ms (${fewn}); with $many ${p50}/${p99} ms (${n}); ratio ${ratio}"
done
for name in few many; do printf '%-5s RSS after the load: %s MiB\n' "$name" "$(rss_mib "${pid[$name]}")"; done
