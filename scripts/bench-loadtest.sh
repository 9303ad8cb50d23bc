#!/usr/bin/env bash
# The load harness's numbers for the notes (not part of CI):
#  1. a `steady` run (60 s at 100 msg/s, corpus mix) against `rempart serve`, scanner on
#     and off;
#  2. the peak rate before p99 end-of-DATA latency passes 100 ms: short open-loop runs at
#     doubling, then bisected rates, against rempart (scanner on) and against Postfix
#     (Debian's postfix relaying to the same harness sink), reported as a ratio.
# Greylisting is off in the gateway's config: the question is throughput, and Postfix
# does none either.
#   usage: [PARTS="steady rempart postfix"] scripts/bench-loadtest.sh [steady-seconds] [probe-seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
steady=${1:-60}; probe=${2:-15}; parts=${PARTS:-steady rempart postfix}
part() { [[ " $parts " == *" $1 "* ]]; }
export PATH="$PATH:/usr/sbin"
cargo build --release -q -p rempart -p rempart-loadtest
bin=target/release
out=${OUT:-bench-results}
mkdir -p "$out"
. scripts/bench-common.sh
on_exit() { if [ -n "${postfix_started:-}" ]; then postfix stop >/dev/null 2>&1 || true; fi; }

sink_port=$(free_port)

start_rempart() { # scanner-enabled → sets $port and $rempart_pid
    port=$(free_port)
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
[scanner]
enabled = $1
[dns]
offline = true
[greylist]
enabled = false
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

run() { # target name scenario [args...] → report dir
    local target=$1 name=$2; shift 2
    $bin/rempart-loadtest run --target "127.0.0.1:$target" --sink-listen "127.0.0.1:$sink_port" --out "$out/$name" "$@" >/dev/null 2>>"$work/loadtest.log" || true
    echo "$out/$name/report.json"
}

summary() { # report.json
    json "$1" '"%6.1f accepted/s (steady)  p50 %7.2f ms  p99 %8.2f ms  e2e p99 %8.2f ms  lost %d  dups %d" % (r["steady_accepted_per_second"], r["latency"]["end_of_data"]["p50_ms"], r["latency"]["end_of_data"]["p99_ms"], r["latency"]["end_to_end"]["p99_ms"], r["reconciliation"]["lost"], r["reconciliation"]["duplicates"])'
}

part steady && echo "== steady ($steady s at 100 msg/s, corpus mix)"
part steady && for scanner in true false; do
    start_rempart $scanner
    report=$(run "$port" "steady-scanner-$scanner" --scenario steady --steady "${steady}s")
    printf 'rempart, scanner %-5s: %s\n' "$scanner" "$(summary "$report")"
    stop_rempart
done

# The largest rate (msg/s) whose p99 end-of-DATA stays under 100 ms and loses nothing.
peak() { # target label
    local target=$1 label=$2 rate=50 good=0 bad=0
    while :; do
        report=$(run "$target" "probe-$label-$rate" --scenario steady --rate "$rate" --ramp 2s --steady "${probe}s")
        [ -f "$report" ] || { echo "  $label $rate msg/s: no report (see $work/loadtest.log)" >&2; tail -3 "$work/loadtest.log" >&2; break; }
        p99=$(json "$report" 'r["latency"]["end_of_data"]["p99_ms"]')
        ok=$(json "$report" 'int(r["latency"]["end_of_data"]["p99_ms"] <= 100 and r["reconciliation"]["lost"] == 0 and r["overload"] == 0)')
        printf '  %-8s %5d msg/s: %s\n' "$label" "$rate" "$(summary "$report")" >&2
        if [ "$ok" = 1 ]; then good=$rate; else bad=$rate; fi
        if [ "$bad" = 0 ]; then rate=$((rate * 2)); else
            [ $((bad - good)) -le $((good / 8 + 10)) ] && break
            rate=$(((good + bad) / 2))
        fi
        [ "$rate" -gt 20000 ] && break
    done
    echo "$good"
}

echo "== peak rate with p99 end-of-DATA <= 100 ms ($probe s probes, corpus mix)"
rempart_peak=0
if part rempart; then
    start_rempart true
    rempart_peak=$(peak "$port" rempart)
    stop_rempart
fi
part postfix || { echo "peak rempart (scanner on): $rempart_peak msg/s"; exit 0; }

# Postfix relaying example.com to the harness sink (main.cf changed for the run only).
pf_port=$(free_port)
saved=$(mktemp -d)
cp /etc/postfix/main.cf /etc/postfix/master.cf "$saved/"
restore_postfix() { cp "$saved/main.cf" "$saved/master.cf" /etc/postfix/; rm -rf "$saved"; }
trap 'restore_postfix; cleanup' EXIT
postconf -e "inet_interfaces = loopback-only" "mydestination =" "relay_domains = example.com" \
    "transport_maps = inline:{example.com=smtp:[127.0.0.1]:$sink_port}" "mynetworks = 127.0.0.0/8" \
    "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination" \
    "smtp_dns_support_level = disabled" "default_process_limit = 200" "smtpd_client_connection_count_limit = 0" \
    "smtp_destination_concurrency_limit = 32" "maillog_file = /dev/stdout" "compatibility_level = 3.6"
postconf -M "127.0.0.1:$pf_port/inet=127.0.0.1:$pf_port inet n - n - - smtpd"
# In the foreground (logging to stdout): containers have no syslog for master to use.
postfix start-fg >"$work/postfix.log" 2>&1 &
pids+=($!)
postfix_started=1
wait_port "$pf_port"
postfix_peak=$(peak "$pf_port" postfix)

echo "peak rempart (scanner on): $rempart_peak msg/s; peak postfix: $postfix_peak msg/s; ratio $(python3 -c "print(round($rempart_peak / max($postfix_peak, 1), 2))")"
