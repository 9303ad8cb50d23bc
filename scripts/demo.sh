#!/usr/bin/env bash
# Sets up the machine, builds Rempart and starts `rempart serve` with deploy/demo.toml,
# then shows in a minute what it is for:
#   1. a clean message relayed to a stand-in customer server;
#   2. a spam refused inside the SMTP session, with its reason and /why/ link, and a
#      program disguised as a PDF refused by its bytes;
#   3. a suspicious message held in the quarantine (seen in the console);
#   4. all of them found in message tracking (`rempart track`, the console's /tracking).
# Rempart keeps running afterwards (Ctrl-C stops it): the console is on
# http://127.0.0.1:8025/ (log in as ops@rempart.demo, password "demo password"),
# SMTP on 127.0.0.1:2525.
set -euo pipefail
cd "$(dirname "$0")/.."

# REMPART_BIN=target/debug/rempart skips setting up and building (for trying changes).
rempart=${REMPART_BIN:-target/release/rempart}
if [ -z "${REMPART_BIN:-}" ]; then
    scripts/setup.sh
    cargo build --release -p rempart
fi
config=deploy/demo.toml

work=$(mktemp -d)
cleanup() { kill "${customer_pid:-}" "${rempart_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT

# The operator's console account (kept in demo-data/ between runs).
echo "demo password" | "$rempart" --config "$config" account add ops@rempart.demo --role operator 2>/dev/null \
    || echo "(the demo's operator account exists already)"

# The customer's mail server: Python's debugging SMTP server prints what it receives.
python3 -W ignore -u -m smtpd -n -c DebuggingServer 127.0.0.1:2526 >"$work/customer.log" 2>&1 &
customer_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/2526) 2>/dev/null && break; sleep 0.1; done

"$rempart" serve --config "$config" 2>"$work/rempart.log" &
rempart_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && break; sleep 0.1; done

section() { echo; echo "== $* =="; }

section "1. A clean message to alice@example.com: relayed to the customer's server"
swaks --server 127.0.0.1:2525 --ehlo demo.client --from someone@sender.example --to alice@example.com \
    --header "Subject: Hello from the Rempart demo" --body "It works." | grep -E '^ *(<-|->) *(MAIL|RCPT|DATA|250 |354)' || true

section "2. A spam: refused inside the SMTP session, saying why (and where to read more)"
swaks --server 127.0.0.1:2525 --ehlo demo.client --from security@paypal-alerts.example --to bob@example.com \
    --header "From: PayPal <security@paypal-alerts.example>" --header "Subject: Your account is suspended" --add-header "Content-Type: text/html" \
    --body '<html><p>Verify your account now</p><a hReF="http://paypal.com@198.51.100.7/login">https://www.paypal.com/</a></html>' \
    2>&1 | grep -E '^ *<\*\* *5' || true

section "   ... and a program named invoice.pdf: refused by what its bytes are, no engine needed"
printf 'MZ\x90\x00\x03\x00\x00\x00This program cannot be run in DOS mode.' > "$work/invoice.pdf"
swaks --server 127.0.0.1:2525 --ehlo demo.client --from billing@supplier.example --to bob@example.com \
    --header "Subject: Invoice 2026-114" --body "Please find the invoice attached." \
    --attach-type application/pdf --attach-name invoice.pdf --attach @"$work/invoice.pdf" 2>&1 | grep -E '^ *<\*\* *5' || true

section "3. A suspicious message: accepted, held in the quarantine for bob to decide"
swaks --server 127.0.0.1:2525 --ehlo demo.client --from promo@deals.example --to bob@example.com \
    --header "From: Amazon <promo@deals.example>" --header "Subject: Last chance" --add-header "Content-Type: text/html" \
    --body '<html><a hReF="http://shop.example">See the offer</a></html>' | grep -E '^ *<- *250 2.0.0' || true

section "Refused too: a domain Rempart does not serve (no open relay), an unknown user"
swaks --server 127.0.0.1:2525 --from someone@sender.example --to victim@elsewhere.example --quit-after RCPT 2>&1 | grep -E '^ *<\*\*' || true
swaks --server 127.0.0.1:2525 --from someone@sender.example --to nobody@example.com --quit-after RCPT 2>&1 | grep -E '^ *<\*\*' || true

for _ in $(seq 300); do grep -q "END MESSAGE" "$work/customer.log" && break; sleep 0.1; done
section "What the customer's server received (only the clean message)"
grep -E '^(From|To|Subject|X-Spam|Authentication-Results):' "$work/customer.log" || cat "$work/customer.log"

sleep 1
section "4. Message tracking: everything that came for bob@example.com"
"$rempart" --config "$config" track --recipient bob@example.com
section "   ... and the refused one, with its timeline"
refused=$("$rempart" --config "$config" track --sender paypal-alerts.example --status refused | head -n 1 | cut -f2)
[ -n "$refused" ] && "$rempart" --config "$config" track --queue-id "$refused"

echo
echo "The console: http://127.0.0.1:8025/  (ops@rempart.demo / demo password)"
echo "  /quarantine  the held message      /tracking  every message's life"
echo "  /why/<id>    what the refused sender reads (the link in the 550 reply)"
echo "Rempart is still running on 127.0.0.1:2525 (Ctrl-C to stop)."
wait "$rempart_pid"
