#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ and runs each for a time or a number of executions,
# one at a time; prints per target the executions done and any crash, timeout or slow input.
#
# Usage: bash scripts/fuzz.sh [--seconds N] [--runs N] [--ci] [--keep-going] [--jobs N]
#                             [--minimise] [--sanitizer none|address] [--max-len N]
#                             [--max-expanded N] [target...]
#
#   --seconds N     run each target for N seconds (default 60)
#   --runs N        stop each target after N executions (with --seconds: whichever comes first)
#   --ci            every target for about 20 s (CI); fails on any crash or timeout
#   --keep-going    libFuzzer's fork mode: go on after a crash or timeout (finds more than one)
#   --jobs N        run each target in N processes (libFuzzer's -fork=N; --runs counts them all):
#                   a long campaign of one target on every core
#   --minimise      afterwards, minimise each target's corpus (-merge=1) against its seeds
#   --sanitizer S   none (default: pure Rust, fastest) or address
#   --max-len N     largest input libFuzzer makes (default 64 KiB, 256 KiB for the HTML/text
#                   targets); 4096, libFuzzer's own default, runs several times faster on long
#                   campaigns: REPEAT lines still reach 2 MiB, and stomp_decode's small frame
#                   limit still covers oversized frames
#   --max-expanded N  largest input a REPEAT line expands to (default 2 MiB): long campaigns of
#                   the text targets run many times faster with 65536, still far past any
#                   quadratic blow-up (the 10 s timeout); the 2 MiB cases stay unit tests
#   target...       some of: stomp_decode stomp_roundtrip app_config message_json
#                   threat_request slack_render trustar_report (default: all)
#
# Works on stable Rust (RUSTC_BOOTSTRAP=1 for the -Z flags cargo-fuzz passes) and installs
# cargo-fuzz (--locked) when it is missing. Builds into fuzz/target; new corpus inputs go to
# fuzz/corpus/<target>/, crash and timeout inputs to fuzz/artifacts/<target>/, logs to
# fuzz/logs/<target>.log. Exits 1 if any target crashed or timed out.
set -euo pipefail

ALL_TARGETS=(stomp_decode stomp_roundtrip app_config message_json threat_request slack_render trustar_report)
SECONDS_EACH=""
RUNS=""
CI_MODE=0
KEEP_GOING=0
JOBS=1
MINIMISE=0
SANITIZER=none
MAX_LEN=""
TARGETS=()

while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) SECONDS_EACH="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --ci) CI_MODE=1; shift ;;
        --keep-going) KEEP_GOING=1; shift ;;
        --jobs) JOBS="$2"; shift 2 ;;
        --minimise|--minimize) MINIMISE=1; shift ;;
        --sanitizer) SANITIZER="$2"; shift 2 ;;
        --max-len) MAX_LEN="$2"; shift 2 ;;
        --max-expanded) export FUZZ_MAX_EXPANDED="$2"; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
if [[ $CI_MODE == 1 ]]; then
    SECONDS_EACH=20
    RUNS=""
elif [[ -z "$SECONDS_EACH" && -z "$RUNS" ]]; then
    SECONDS_EACH=60
fi
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (one of: ${ALL_TARGETS[*]})" >&2; exit 2; }
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$FUZZ/target/$TRIPLE/release"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

echo "== building ${TARGETS[*]} (sanitizer $SANITIZER, release with debug assertions)"
for t in "${TARGETS[@]}"; do
    (cd "$FUZZ" && cargo fuzz build -O -a --sanitizer "$SANITIZER" --target-dir "$FUZZ/target" "$t")
done

# Largest input libFuzzer makes: 64 KiB; the HTML/text targets 256 KiB (their REPEAT line
# reaches 2 MiB anyway).
max_len() {
    [[ -n "$MAX_LEN" ]] && { echo "$MAX_LEN"; return; }
    case "$1" in
        slack_render|trustar_report) echo 262144 ;;
        *) echo 65536 ;;
    esac
}

FAILED=()
SUMMARY=()
mkdir -p "$FUZZ/logs"
for t in "${TARGETS[@]}"; do
    corpus="$FUZZ/corpus/$t"
    seeds="$FUZZ/seeds/$t"
    artifacts="$FUZZ/artifacts/$t"
    log="$FUZZ/logs/$t.log"
    mkdir -p "$corpus" "$seeds" "$artifacts"
    args=(-rss_limit_mb=2048 -timeout=10 -report_slow_units=2 -max_len="$(max_len "$t")" -print_final_stats=1
          -artifact_prefix="$artifacts/")
    [[ -n "$SECONDS_EACH" ]] && args+=(-max_total_time="$SECONDS_EACH")
    [[ -n "$RUNS" ]] && args+=(-runs="$RUNS")
    if [[ $KEEP_GOING == 1 ]]; then
        args+=(-fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    elif [[ $JOBS -gt 1 ]]; then
        args+=(-fork="$JOBS")
    fi
    forked=$(( KEEP_GOING == 1 || JOBS > 1 ))
    before="$(date +%s)"
    stamp="$(mktemp)"
    echo "== $t: ${args[*]}"
    set +e
    "$BIN_DIR/$t" "${args[@]}" "$corpus" "$seeds" >"$log" 2>&1
    status=$?
    set -e
    took=$(( $(date +%s) - before ))
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    if [[ $forked == 1 || -z "$execs" ]]; then
        # fork mode (or killed): the parent's last progress line "#N: cov: ..." counts every
        # job (a job's own lines, "#N NEW ...", can follow it in the log after a crash)
        last="$(grep -E '^#[0-9]+: cov' "$log" | tail -1 || grep -E '^#[0-9]+' "$log" | tail -1 || true)"
        execs="$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")"
        [[ -n "$execs" && $took -gt 0 ]] && rate=$(( execs / took ))
    fi
    # The inputs libFuzzer saved during this run: crash-, timeout-, oom-, leak-, slow-unit-.
    saved="$(find "$artifacts" -type f -newer "$stamp" | sort)"
    rm -f "$stamp"
    crashes="$(grep -E '/(crash|timeout|oom|leak)-[^/]*$' <<<"$saved" || true)"
    slow="$(grep -E '/slow-unit-[^/]*$' <<<"$saved" || true)"
    line="$t: ${execs:-?} executions in ${took} s (${rate:-?} exec/s), exit $status"
    if [[ -n "$crashes" || ( $status != 0 && $KEEP_GOING == 0 ) ]]; then
        FAILED+=("$t")
        line+=" — FAILED"
    fi
    echo "$line"
    SUMMARY+=("$line")
    if [[ $KEEP_GOING == 0 ]]; then
        grep -m1 -A1 -E "panicked at" "$log" | sed 's/^/   /' || true
        grep -m1 -E "ERROR: libFuzzer: " "$log" | sed 's/^/   /' || true
    fi
    while read -r f; do
        [[ -n "$f" ]] || continue
        echo "   crash file: $f"
        SUMMARY+=("   crash file: $f")
    done <<<"$crashes"
    while read -r f; do
        [[ -n "$f" ]] || continue
        echo "   slow input: $f"
        SUMMARY+=("   slow input: $f")
    done <<<"$slow"
    if [[ $status != 0 && -z "$crashes" ]]; then
        echo "   libFuzzer exited $status without a crash file; see $log"
        tail -5 "$log" | sed 's/^/   | /'
    fi

    if [[ $MINIMISE == 1 ]]; then
        # Keep in corpus/ only what the seeds do not already cover: the seeds go into the output
        # directory first, libFuzzer adds the corpus inputs with new coverage, the seeds go again.
        out="$(mktemp -d)"
        cp "$seeds"/* "$out"/ 2>/dev/null || true
        "$BIN_DIR/$t" -merge=1 -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$t")" \
            "$out" "$corpus" >"$FUZZ/logs/$t.merge.log" 2>&1 || {
            echo "   merge failed, corpus left as it was; see $FUZZ/logs/$t.merge.log"
            rm -rf "$out"
            continue
        }
        for s in "$seeds"/*; do rm -f "$out/$(basename "$s")"; done
        rm -rf "$corpus" && mkdir -p "$corpus" && cp "$out"/* "$corpus"/ 2>/dev/null || true
        rm -rf "$out"
        echo "   corpus minimised: $(ls "$corpus" | wc -l) files, $(du -sh "$corpus" | cut -f1)"
    fi
done

echo "== summary"
printf '%s\n' "${SUMMARY[@]}"
if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "== crashes or timeouts in: ${FAILED[*]} (inputs under fuzz/artifacts/; replay one with"
    echo "   fuzz/target/$TRIPLE/release/<target> <file>, or save it under fuzz/regressions/<target>/open/)"
    exit 1
fi
