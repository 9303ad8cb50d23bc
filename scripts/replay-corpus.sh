#!/usr/bin/env bash
# Replays every message of ../shared/corpus/train once through SMTP (Python's smtplib,
# line endings as an MTA sends them: CRLF) into `rempart serve` with the scanner off,
# relaying to the load harness's sink, and counts the replies. Any refusal here is a
# protocol refusal: the issue 13 bar is 0. Not part of CI (a measurement for notes).
#   usage: scripts/replay-corpus.sh [corpus-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpus/train}
[ -d "$corpus" ] || { echo "replay-corpus: $corpus not found" >&2; exit 1; }
cargo build -q -p rempart -p rempart-loadtest
bin=target/debug
. scripts/bench-common.sh

sink_port=$(free_port)
port=$(free_port)
$bin/rempart-loadtest sink --listen "127.0.0.1:$sink_port" >/dev/null 2>"$work/sink.log" &
pids+=($!)
cat > "$work/rempart.toml" <<TOML
[smtp]
hostname = "replay.rempart"
[[smtp.listener]]
address = "127.0.0.1:$port"
[queue]
data_dir = "$work/data"
[scanner]
enabled = false
[dns]
offline = true
[[domain]]
name = "example.com"
route = "smtp://127.0.0.1:$sink_port"
TOML
RUST_LOG=warn $bin/rempart serve --config "$work/rempart.toml" >/dev/null 2>"$work/rempart.log" &
pids+=($!)
wait_port "$sink_port"
wait_port "$port"

python3 - "$port" "$corpus" <<'PY'
import collections, pathlib, re, smtplib, sys
port, corpus = int(sys.argv[1]), pathlib.Path(sys.argv[2])
files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix == ".eml")
codes = collections.Counter()
refused = []
longest = 0
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("replay.test")
for path in files:
    data = re.sub(rb"\r?\n", b"\r\n", path.read_bytes())
    longest = max(longest, max(len(l) for l in data.split(b"\r\n")))
    try:
        s.sendmail("replay@sender.test", ["user0@example.com"], data)
        codes[250] += 1
    except smtplib.SMTPResponseException as e:
        codes[e.smtp_code] += 1
        refused.append((path.name, e.smtp_code, e.smtp_error.decode(errors="replace")[:120]))
        s.rset()
    except smtplib.SMTPRecipientsRefused as e:
        codes["rcpt"] += 1
        refused.append((path.name, "rcpt", str(e)[:120]))
s.quit()
print(f"messages: {len(files)}  accepted: {codes[250]}  refused: {len(refused)}  longest line: {longest} bytes")
print("replies:", dict(codes))
for r in refused[:20]:
    print("  refused:", *r)
PY
