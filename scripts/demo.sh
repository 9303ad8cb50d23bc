#!/usr/bin/env bash
# Sets up the machine, builds Rempart, starts `rempart serve` with deploy/demo.toml,
# relays one message to a stand-in customer server and shows what it received.
# Rempart keeps running afterwards (Ctrl-C stops it): try swaks against 127.0.0.1:2525.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release -p rempart

work=$(mktemp -d)
cleanup() { kill "${customer_pid:-}" "${rempart_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT

# The customer's mail server: Python's debugging SMTP server prints what it receives.
python3 -W ignore -u -m smtpd -n -c DebuggingServer 127.0.0.1:2526 >"$work/customer.log" 2>&1 &
customer_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/2526) 2>/dev/null && break; sleep 0.1; done

target/release/rempart serve --config deploy/demo.toml &
rempart_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && break; sleep 0.1; done

echo; echo "== Sending a message to alice@example.com through Rempart =="
swaks --server 127.0.0.1:2525 --ehlo demo.client --from someone@sender.example --to alice@example.com \
    --header "Subject: Hello from the Rempart demo" --body "It works."
echo; echo "== Refused: a domain Rempart does not serve (no open relay) =="
swaks --server 127.0.0.1:2525 --from someone@sender.example --to victim@elsewhere.example --quit-after RCPT || true

for _ in $(seq 300); do grep -q "END MESSAGE" "$work/customer.log" && break; sleep 0.1; done
echo; echo "== What the customer's server received =="
cat "$work/customer.log"
echo; echo "Rempart is still running on 127.0.0.1:2525 (Ctrl-C to stop)."
wait "$rempart_pid"
