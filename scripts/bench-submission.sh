#!/usr/bin/env bash
# Submission (STARTTLS + AUTH PLAIN + outbound scan + DKIM signing) against plain inbound
# (STARTTLS, inbound scan), through one `rempart serve`, with the load harness: the same
# gateway, closed loop, alternating rounds; prints msg/s and the ratio. Not part of CI.
#   usage: scripts/bench-submission.sh [seconds-per-run] [sessions] [rounds] [messages-per-session]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}; sessions=${2:-8}; rounds=${3:-2}; per_session=${4:-10}
cargo build --release -q -p rempart -p rempart-loadtest

. scripts/bench-common.sh

smtp=$(free_port); sink=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench.rempart \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
target/release/rempart dkim generate example.com bench --out "$work/dkim.pem" > /dev/null 2>&1
cat > "$work/rempart.toml" <<TOML
[smtp]
hostname = "bench.rempart"
max_connections_per_ip = 1000
[[smtp.listener]]
address = "127.0.0.1:$smtp"
[[smtp.listener]]
address = "127.0.0.1:0"
kind = "submission"
[tls]
cert = "$work/cert.pem"
key = "$work/key.pem"
[queue]
data_dir = "$work/data"
[relay]
concurrency = 32
[greylist]
enabled = false
[dns]
offline = true
[outbound.account]
messages_per_hour = 0
messages_per_day = 0
recipients_per_hour = 0
recipients_per_day = 0
[outbound.domain]
messages_per_hour = 0
messages_per_day = 0
recipients_per_hour = 0
recipients_per_day = 0
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:$sink"
[[domain.dkim]]
selector = "bench"
key_file = "$work/dkim.pem"
TOML
echo 'a long bench password' | target/release/rempart --config "$work/rempart.toml" account add bench@example.com 2>/dev/null
target/release/rempart serve --config "$work/rempart.toml" 2> "$work/rempart.log" &
pids+=($!)
wait_port "$smtp"
submission=""
for _ in $(seq 100); do
    submission=$(grep -o '"address":"127.0.0.1:[0-9]*"[^}]*"kind":"Submission"' "$work/rempart.log" | grep -o '127.0.0.1:[0-9]*' | tail -1 || true)
    [ -n "$submission" ] && break
    sleep 0.1
done
[ -n "$submission" ] || { echo "no submission listener in the log" >&2; exit 1; }

scenario() { # name, extra TOML lines
    cat > "$work/$1.toml" <<TOML
name = "$1"
rate = 0
sessions = $sessions
ramp = "1s"
steady = "${seconds}s"
messages_per_session = $per_session
starttls = true
recipient_domain = "example.com"
drain = "30s"
$2
[mix]
generated = true
sizes = [{ bytes = 4096, weight = 1.0 }]
TOML
}
scenario inbound 'sender = "sender@outside.example"'
scenario submission 'sender = "bench@example.com"
auth_user = "bench@example.com"
auth_password = "a long bench password"'

run() { # name, target
    loadtest_json "$1" "$2" "$work/$1.toml"
    json "$work/$1.json" "f\"{r['steady_accepted_per_second']:.1f} msg/s (replies {dict(r['replies'])}, errors {dict(r['errors'])})\""
}
for round in $(seq "$rounds"); do
    inbound=$(run inbound "127.0.0.1:$smtp")
    submitted=$(run submission "$submission")
    echo "round $round: inbound $inbound"
    echo "round $round: submission $submitted"
    echo "round $round: ratio submission/inbound $(python3 -c "print(round(${submitted%% *} / ${inbound%% *}, 2))")"
done
