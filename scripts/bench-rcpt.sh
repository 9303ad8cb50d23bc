#!/usr/bin/env bash
# RCPT latency by recipient source, through one `rempart serve` and the load harness
# (closed loop, no pipelining, so each RCPT's round trip is timed): a static list
# (the baseline), LDAP against a real slapd started here, and a callout to the route
# (the harness's sink) whose answers are cached after the first question per address.
# Alternating rounds; prints p50/p99 per source and the ratio to the list. Not part of CI.
#   usage: scripts/bench-rcpt.sh [seconds-per-run] [sessions] [rounds] [users]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}; sessions=${2:-8}; rounds=${3:-2}; users=${4:-200}
cargo build --release -q -p rempart -p rempart-loadtest

. scripts/bench-common.sh

smtp=$(free_port); sink=$(free_port); ldap=$(free_port)

# slapd with the users of ldap.example (Debian's slapd, from scripts/setup.sh).
mkdir -p "$work/slapd/db"
cat > "$work/slapd/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $work/slapd/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 104857600
suffix "dc=ldap,dc=example"
rootdn "cn=admin,dc=ldap,dc=example"
rootpw bench-admin
directory $work/slapd/db
index mail eq
CONF
{
    printf 'dn: dc=ldap,dc=example\nobjectClass: dcObject\nobjectClass: organization\ndc: ldap\no: Bench\n\n'
    for i in $(seq 0 $((users - 1))); do
        printf 'dn: uid=user%d,dc=ldap,dc=example\nobjectClass: inetOrgPerson\nuid: user%d\ncn: user%d\nsn: user%d\nmail: user%d@ldap.example\n\n' "$i" "$i" "$i" "$i" "$i"
    done
} > "$work/slapd/data.ldif"
/usr/sbin/slapadd -q -f "$work/slapd/slapd.conf" -l "$work/slapd/data.ldif"
/usr/sbin/slapd -f "$work/slapd/slapd.conf" -h "ldap://127.0.0.1:$ldap/" -d 0 2> /dev/null &
pids+=($!)
wait_port "$ldap"
echo bench-admin > "$work/ldap.pw"

for domain in list ldap callout; do
    for i in $(seq 0 $((users - 1))); do echo "user$i@$domain.example"; done > "$work/$domain.rcpts"
done
cat > "$work/rempart.toml" <<TOML
[smtp]
hostname = "bench.rempart"
max_connections_per_ip = 1000
[[smtp.listener]]
address = "127.0.0.1:$smtp"
[queue]
data_dir = "$work/data"
[relay]
concurrency = 32
[greylist]
enabled = false
[scanner]
enabled = false
[dns]
offline = true
[[domain]]
name = "list.example"
route = "smtp://127.0.0.1:$sink"
recipients_file = "$work/list.rcpts"
[[domain]]
name = "ldap.example"
route = "smtp://127.0.0.1:$sink"
recipient_source = "ldap"
[domain.ldap]
url = "ldap://127.0.0.1:$ldap"
bind_dn = "cn=admin,dc=ldap,dc=example"
bind_password_file = "$work/ldap.pw"
base = "dc=ldap,dc=example"
filter = "(mail={address})"
[[domain]]
name = "callout.example"
route = "smtp://127.0.0.1:$sink"
recipient_source = "callout"
[domain.callout]
probe_sender = "callout@bench.rempart"
TOML
target/release/rempart serve --config "$work/rempart.toml" 2> "$work/rempart.log" &
pids+=($!)
wait_port "$smtp"

cat > "$work/scenario.toml" <<TOML
name = "rcpt"
rate = 0
sessions = $sessions
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

run() { # source
    loadtest_json "$1" "127.0.0.1:$smtp" "$work/scenario.toml" --recipients "$work/$1.rcpts"
    json "$work/$1.json" "f\"{r['latency']['rcpt']['p50_ms']:.3f} {r['latency']['rcpt']['p99_ms']:.3f} {r['latency']['rcpt']['count']} {dict(r['replies'])}\""
}
for round in $(seq "$rounds"); do
    read -r list50 list99 listn listr <<< "$(run list)"
    echo "round $round: list    RCPT p50 ${list50} ms  p99 ${list99} ms  (${listn} RCPTs, replies ${listr})"
    for source in ldap callout; do
        read -r p50 p99 n replies <<< "$(run "$source")"
        ratio=$(python3 -c "print(f'{$p50 / $list50:.2f} / {$p99 / $list99:.2f}')")
        echo "round $round: $source RCPT p50 ${p50} ms  p99 ${p99} ms  (${n} RCPTs, replies ${replies}); ratio to list p50/p99 ${ratio}"
    done
done
echo "callout questions asked of the route: $(grep -c '"callout"' "$work/rempart.log" || true)"
