#!/usr/bin/env bash
# CI's smoke run of the benchmark tools (.ci/run): the load generator's modes, briefly,
# against the floor server and the example server, each run checked for the count it
# reports. Seconds, not a measurement: no rate or time is judged (bench/compare.sh measures).
#
#   bench/smoke.sh            # debug builds (the ones `cargo test` already made)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
. bench/lib.sh

PROFILE="${PROFILE:-debug}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/examples"
profile_flag=()
[ "$PROFILE" = release ] && profile_flag=(--release)
cargo build --locked "${profile_flag[@]}" --example load --example floor_server --example server

# Ports far from the example server's defaults and from bench/compare.sh's.
# Below the kernel's ephemeral range (32768-60999 on Linux): a port in it may be taken at that
# moment as the local end of one of the suite's many client connections.
FLOOR_IMAP=12143 FLOOR_POP3=12110
TOWER_IMAP=13143 TOWER_POP3=13110 TOWER_METRICS=13898

WORK="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/floor_server" --imap "127.0.0.1:$FLOOR_IMAP" --pop3 "127.0.0.1:$FLOOR_POP3" >"$WORK/floor.log" 2>&1 &
pids+=($!)
tower_config "$WORK/tower" "$TOWER_IMAP" "$TOWER_POP3" "" "$TOWER_METRICS" ""
python3 bench/seed_maildir.py "$WORK/tower/maildir/bench" 20
python3 bench/seed_maildir.py "$WORK/tower/maildir/retr" --big 1
"$BIN/server" --config "$WORK/tower/server.toml" >"$WORK/tower/server.log" 2>&1 &
server=$!
pids+=("$server")
for port in "$FLOOR_IMAP" "$FLOOR_POP3" "$TOWER_IMAP" "$TOWER_POP3"; do wait_port "$port"; done

# expect FIELD VALUE ARGS...: run the load generator with ARGS and check one field of its
# JSON summary; its own failure (any unexpected answer) fails the smoke run.
expect() {
    local field="$1" want="$2"
    shift 2
    local got
    got="$("$BIN/load" "$@" --duration 60 | load_field "$field")"
    if [ "$got" != "$want" ]; then
        echo "load $*: $field is $got, not $want" >&2
        exit 1
    fi
    echo "ok: load $1 $3 ($field = $got)"
}

expect connections 300 imap-greet --addr "127.0.0.1:$FLOOR_IMAP" --connections 300 --concurrency 8
expect connections 300 pop3-greet --addr "127.0.0.1:$FLOOR_POP3" --connections 300 --concurrency 8
expect connections 300 imap-greet --addr "127.0.0.1:$TOWER_IMAP" --connections 300 --concurrency 8
expect connections 300 pop3-greet --addr "127.0.0.1:$TOWER_POP3" --connections 300 --concurrency 8
# Both whole-mailbox FETCHes: one response per message each.
expect fetch_responses 40 imap-fetch --addr "127.0.0.1:$TOWER_IMAP" --user bench --password bench
expect connections 2 pop3-retr --addr "127.0.0.1:$TOWER_POP3" --user retr --password retr --connections 2
expect connections 50 idle --addr "127.0.0.1:$TOWER_IMAP" --pid "$server" --connections 50 --warmup 5 --settle 100
expect connections 20 idle --addr "127.0.0.1:$TOWER_IMAP" --pid "$server" --login --user bench --password bench \
    --connections 20 --settle 100
# Addresses off this machine are refused before any connection.
if "$BIN/load" imap-greet --addr 192.0.2.1:143 2>/dev/null; then
    echo "load accepted a non-loopback address" >&2
    exit 1
fi
echo "smoke: 9 passed, 0 failed"
