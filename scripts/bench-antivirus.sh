#!/usr/bin/env bash
# What the malware engine costs (not part of CI): `rempart serve` with the scanner on,
# antivirus off and on (a real clamd on a unix socket, with a database this script writes:
# EICAR's body signature; the official databases make each scan dearer, see the note),
# in the same run:
#  1. a `steady` run of the load harness (corpus mix, 100 msg/s): end-of-DATA p50/p99;
#  2. a closed-loop run (20 sessions, as fast as it goes): accepted msg/s.
#   usage: scripts/bench-antivirus.sh [steady-seconds] [closed-seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
steady=${1:-30}; closed=${2:-20}
cargo build --release -q -p rempart -p rempart-loadtest
bin=target/release
. scripts/bench-common.sh
out=${OUT:-bench-results}
mkdir -p "$out"
sink_port=$(free_port)

# clamd with a database of its own (no download), as the tests start it.
mkdir -p "$work/clamd/db"
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
echo "Eicar-Test-Signature:0:*:$(printf '%s' "$eicar" | od -An -tx1 | tr -d ' \n')" > "$work/clamd/db/test.ndb"
cat > "$work/clamd/clamd.conf" <<CONF
Foreground yes
LocalSocket $work/clamd/clamd.sock
DatabaseDirectory $work/clamd/db
LogFile $work/clamd/clamd.log
AlertEncrypted yes
AlertOLE2Macros yes
StreamMaxLength 30M
MaxThreads 16
CONF
clamd -c "$work/clamd/clamd.conf" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/clamd/clamd.sock" ] && break; sleep 0.1; done

start_rempart() { # antivirus on|off → sets $port and $rempart_pid
    port=$(free_port)
    local av=""
    [ "$1" = on ] && av="[antivirus]
clamd = \"unix:$work/clamd/clamd.sock\""
    cat > "$work/rempart-$1.toml" <<TOML
[smtp]
hostname = "bench.rempart"
max_connections = 5000
max_connections_per_ip = 5000
[[smtp.listener]]
address = "127.0.0.1:$port"
[queue]
data_dir = "$work/data-$1-$port"
[relay]
concurrency = 32
[dns]
offline = true
[greylist]
enabled = false
$av
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:$sink_port"
TOML
    RUST_LOG=warn $bin/rempart serve --config "$work/rempart-$1.toml" >/dev/null 2>>"$work/rempart.log" &
    rempart_pid=$!
    pids+=($rempart_pid)
    wait_port "$port"
}
stop_rempart() { kill "$rempart_pid"; wait "$rempart_pid" 2>/dev/null || true; }
run() { # target name args… → report path
    local target=$1 name=$2; shift 2
    $bin/rempart-loadtest run --target "127.0.0.1:$target" --sink-listen "127.0.0.1:$sink_port" --out "$out/$name" "$@" >/dev/null 2>>"$work/loadtest.log" || true
    echo "$out/$name/report.json"
}
field() { json "$1" "$2"; }

echo "== steady ($steady s at 100 msg/s, corpus mix), then closed loop ($closed s, 20 sessions)"
for av in off on; do
    start_rempart $av
    s=$(run "$port" "av-steady-$av" --scenario steady --steady "${steady}s")
    c=$(run "$port" "av-closed-$av" --scenario steady --rate 0 --sessions 20 --ramp 1s --steady "${closed}s")
    stop_rempart
    eval "p50_$av=$(field "$s" 'r["latency"]["end_of_data"]["p50_ms"]')"
    eval "p99_$av=$(field "$s" 'r["latency"]["end_of_data"]["p99_ms"]')"
    eval "rate_$av=$(field "$c" 'r["steady_accepted_per_second"]')"
    printf 'antivirus %-3s: end-of-DATA p50 %6.2f ms  p99 %7.2f ms  (lost %s)   closed loop %6.1f msg/s (lost %s)\n' "$av" \
        "$(field "$s" 'r["latency"]["end_of_data"]["p50_ms"]')" "$(field "$s" 'r["latency"]["end_of_data"]["p99_ms"]')" \
        "$(field "$s" 'r["reconciliation"]["lost"]')" "$(field "$c" 'r["steady_accepted_per_second"]')" "$(field "$c" 'r["reconciliation"]["lost"]')"
done
printf 'added by clamd: p50 +%.2f ms, p99 +%.2f ms; throughput on/off %.2f\n' \
    "$(echo "$p50_on - $p50_off" | bc -l)" "$(echo "$p99_on - $p99_off" | bc -l)" "$(echo "$rate_on / $rate_off" | bc -l)"
echo "($(nproc) cores; clamd with a one-signature database)"
