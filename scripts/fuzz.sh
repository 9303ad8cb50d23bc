#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz, libFuzzer) one after the other.
#   scripts/fuzz.sh                 every target 60 s (CI's smoke: SECONDS_EACH=20)
#   SECONDS_EACH=3600 scripts/fuzz.sh reply bounce   chosen targets, one hour each
# Each target's corpus grows in fuzz/corpus/<target> (kept between runs, not committed);
# a crash stops the run and leaves its input in fuzz/artifacts/<target>/ — make it a
# regression test. Prints, per target: runs, corpus size and coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
seconds="${SECONDS_EACH:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
# -O: release without debug assertions (mail-parser has a debug_assert!(false) real mail
# reaches); overflow checks stay on (fuzz/Cargo.toml). No sanitizer: the code is safe Rust,
# and what the fuzzers look for is panics, hangs and runaway memory.
build_log=$(mktemp)
cargo fuzz build -O -s none >"$build_log" 2>&1 || { tail -n 80 "$build_log"; echo "fuzz: build failed" >&2; exit 1; }
rm -f "$build_log"
shared=../shared

# Copies at most N files found under DIR (more `find` tests after it) into INTO; nothing
# when DIR is absent. (awk reads to the end: no SIGPIPE under pipefail.)
some() {
    local n=$1 into=$2 from=$3
    shift 3
    [ -d "$from" ] || return 0
    find "$from" -type f "$@" | sort | awk -v n="$n" 'NR <= n' | while read -r f; do cp "$f" "$into/"; done
}

# Seeds for an empty corpus: real inputs read in place from ../shared (never committed),
# and a few ZIP files made here.
seed() {
    local target=$1 dir="fuzz/corpus/$1"
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || return 0
    case "$target" in
        bounce) some 400 "$dir" "$shared/testdata/bounces" -name '*.eml' ;;
        message) for d in "$shared/testdata/mime" "$shared/testdata/spamassassin-t-data" "$shared/corpus/train/spam"; do
                some 150 "$dir" "$d" -size -64k
            done ;;
        session) printf 'EHLO a\r\nMAIL FROM:<s@x.test> BODY=8BITMIME\r\nRCPT TO:<alice@example.com> NOTIFY=FAILURE\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nBDAT 4 LAST\r\nabcdQUIT\r\n' >"$dir/seed" ;;
        archive) python3 - "$dir" <<'PY'
import io, sys, zipfile
for i, names in enumerate([["a.txt"], ["doc.pdf.exe", "x/y.js"], ["nested.zip"]]):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in names:
            z.writestr(n, "hello " * 20)
    open(f"{sys.argv[1]}/seed{i}.zip", "wb").write(buf.getvalue())
PY
        ;;
    esac
}

for target in "${targets[@]}"; do
    seed "$target"
    log=$(mktemp)
    if ! cargo fuzz run -O -s none "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo '?')
    echo "fuzz: $target ok: ${seconds}s, $runs runs, corpus $(find "fuzz/corpus/$target" -type f | wc -l) inputs, coverage $cov edges"
    rm -f "$log"
done
