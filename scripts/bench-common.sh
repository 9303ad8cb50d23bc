# Sourced by the bench-*.sh scripts: a scratch directory and the processes they start,
# both cleaned up on exit, and small helpers. A script may define `on_exit` for more.
work=$(mktemp -d)
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    if declare -F on_exit >/dev/null; then on_exit; fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# loadtest_json NAME TARGET SCENARIO [ARGS…]: one harness run against TARGET with the
# sink on $sink, its JSON report in $work/NAME.json (release build).
loadtest_json() {
    local name=$1 target=$2 scenario=$3
    shift 3
    target/release/rempart-loadtest run --target "$target" --scenario "$scenario" --sink-listen "127.0.0.1:$sink" \
        --out "$work/report-$name" --json "$@" > "$work/$name.json" 2> /dev/null
}
# json FILE EXPR: EXPR evaluated in Python with the parsed FILE as `r`.
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
# Postfix's smtp-source and smtp-sink on PATH (installed when missing).
need_postfix() {
    if ! command -v smtp-source >/dev/null && [ ! -x /usr/sbin/smtp-source ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
    fi
    export PATH="$PATH:/usr/sbin"
}
# start_sink PORT: Postfix's smtp-sink on PORT, counting in $work/sink.out;
# sink_count: the messages it has received so far ("mesg=N" in its running counter).
start_sink() {
    local as_user=(); [ "$(id -u)" -eq 0 ] && as_user=(-u nobody)
    smtp-sink "${as_user[@]}" -c "127.0.0.1:$1" 1000 > "$work/sink.out" 2>&1 &
    pids+=($!)
    wait_port "$1"
}
sink_count() { local n; n=$(tr '\r' '\n' < "$work/sink.out" | grep -Eo 'mesg=[0-9]+' | tail -1 | cut -d= -f2); echo "${n:-0}"; }
