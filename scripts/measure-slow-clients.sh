#!/usr/bin/env bash
# Issue 30's bar, measured: SLOW (default 1,000) trickling clients held against
# `rempart serve` (max_connections 1000) while rempart-loadtest sends 200 messages;
# prints the slow clients' fate, the load's delivered count and latencies, and the
# gateway's RSS before and with the slow clients (RSS per idle connection).
#   scripts/measure-slow-clients.sh [SLOW=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
slow="${1:-1000}"
cargo build --release --locked -p rempart -p rempart-loadtest >/dev/null 2>&1
dir=$(mktemp -d)
cat >"$dir/rempart.toml" <<CONF
[smtp]
hostname = "gw.test"
[[smtp.listener]]
address = "127.0.0.1:2525"
[queue]
data_dir = "$dir/data"
[scanner]
enabled = false
[console]
enabled = false
[dns]
offline = true
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:2626"
CONF
target/release/rempart serve --config "$dir/rempart.toml" 2>"$dir/gateway.log" &
gw=$!
trap 'kill $gw 2>/dev/null || true' EXIT
sleep 1
rss() { awk '/VmRSS/ {print $2}' "/proc/$gw/status"; }
before=$(rss)
python3 scripts/slow-clients.py 127.0.0.1:2525 "$slow" 75 3 >"$dir/slow.txt" &
slowpid=$!
sleep 15
held=$(rss)
open=$(ls "/proc/$gw/fd" | wc -l)
target/release/rempart-loadtest run --target 127.0.0.1:2525 --scenario smoke --rate 20 --ramp 0s --steady 10s \
    --out "$dir/report" --json >"$dir/load.json" 2>"$dir/load.log" || true
wait $slowpid
python3 - "$dir/load.json" <<PY
import json, sys
r = json.load(open(sys.argv[1]))
rec, lat = r["reconciliation"], r["latency"]
print(f"load: sent {rec['sent']}, accepted {rec['accepted']}, delivered {rec['delivered']}, lost {rec['lost']}, "
      f"tempfailed {rec['tempfailed']}, errors {rec['errors']}; replies {r['replies']}")
for k in ("connect", "banner", "end_of_data", "end_to_end"):
    l = lat[k]
    print(f"  {k}: p50 {l['p50_ms']:.1f} ms, p99 {l['p99_ms']:.1f} ms, max {l['max_ms']:.1f} ms")
PY
cat "$dir/slow.txt"
echo "gateway RSS: $before kB alone, $held kB with the slow clients held ($open fds): $(( (held - before) / slow )) kB per idle connection"
echo "evictions logged: $(grep -c 'idle session closed to make room' "$dir/gateway.log" || true)"
