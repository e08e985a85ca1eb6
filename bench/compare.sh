#!/usr/bin/env bash
# tower-mail beside Dovecot, WildDuck and the floor, on this machine, with one load generator
# (examples/load.rs). The figures of BENCHMARKS.md come from this script:
#
#   sudo bench/compare.sh                 # on a Debian machine, as root
#   ROUNDS=3 CONNECTIONS=5000 bench/compare.sh   # shorter
#
# It installs what it needs (Dovecot's IMAP and POP3 servers from Debian, WildDuck from npm),
# builds the floor, the example server and the load generator in release mode, seeds a
# 10,000-message Maildir (one copy per server), starts every server on loopback ports with its
# logs written to a file, and runs the same loads against all of them in rounds, the servers'
# order rotating from round to round so that drift in the machine's load hits all alike. It
# prints ratios to the floor and memory per connection, and writes bench/results/: the raw
# JSON lines, summary.md and chart.svg (bench/report.py).
#
# Not for CI: it installs services' packages, takes minutes and measures a machine. CI builds
# the tools and smoke-runs the load generator instead (.ci/run).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
. bench/lib.sh
if [ "${CI:-}" = "true" ]; then
    echo "bench/compare.sh measures a machine; it does not run in CI" >&2
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench/compare.sh installs packages and runs Dovecot: run it as root" >&2
    exit 1
fi

ROUNDS="${ROUNDS:-7}"                 # rounds of the rate loads, every server in each
CONNECTIONS="${CONNECTIONS:-20000}"   # connections per server per round
CONCURRENCY="${CONCURRENCY:-32}"      # clients at once
MESSAGES="${MESSAGES:-10000}"         # the FETCH mailbox
FETCH_ROUNDS="${FETCH_ROUNDS:-3}"     # warm FETCH rounds (each alternates the servers)
IDLE="${IDLE:-2000}"                  # idle connections before login
IDLE_LOGIN="${IDLE_LOGIN:-500}"       # idle connections after LOGIN + SELECT
RETR_MIB="${RETR_MIB:-10}"            # the POP3 RETR message
# How cost grows (bench/growth.sh):
GROWTH_CLIENTS="${GROWTH_CLIENTS:-10 100 1000 5000 10000}"   # clients at once
GROWTH_CONNECTIONS="${GROWTH_CONNECTIONS:-200000}"           # connections per level
GROWTH_IDLE="${GROWTH_IDLE:-1000 2000 4000 8000}"            # idle connections
GROWTH_CYCLE_STEPS="${GROWTH_CYCLE_STEPS:-25}"               # steps of 40,000 connections
GROWTH_MAILBOXES="${GROWTH_MAILBOXES:-1000 2500 5000 10000 20000}"  # messages, FETCH sweep
OUT="${OUT:-$ROOT/bench/results}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/examples"

# Ports: the floor 21xx, tower-mail 31xx (and a refusing instance 41xx, one with a long
# listen queue 71xx), Dovecot 51xx, WildDuck 61xx.
FLOOR_IMAP=2143 FLOOR_POP3=2110
TOWER_IMAP=3143 TOWER_POP3=3110 TOWER_METRICS=3898 TOWER_IMAPS=3993
DEEP_IMAP=7143 DEEP_POP3=7110 DEEP_METRICS=7898
REFUSE_IMAP=4143 REFUSE_POP3=4110 REFUSE_IMAPS=4993 REFUSE_METRICS=4898
DOVECOT_IMAP=5143 DOVECOT_POP3=5110
WILDDUCK_IMAP=6143 WILDDUCK_POP3=6110

WORK="$(mktemp -d /tmp/tower-mail-bench.XXXXXX)"
# Dovecot's mail processes run as the `dovecot` user and must reach the mail under here.
chmod 755 "$WORK"
declare -A PIDS=()
cleanup() {
    restore_listen_queues
    for name in "${!PIDS[@]}"; do kill "${PIDS[$name]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
# The kernel's caps on listen queues, which bench/growth.sh raises for one sweep.
SOMAXCONN="$(cat /proc/sys/net/core/somaxconn)"
SYN_BACKLOG="$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)"
restore_listen_queues() {
    sysctl -qw "net.core.somaxconn=$SOMAXCONN" "net.ipv4.tcp_max_syn_backlog=$SYN_BACKLOG" 2>/dev/null || true
}
trap cleanup EXIT

log() { printf '== %s\n' "$*" >&2; }

# ---- install ----------------------------------------------------------------------------
need_apt=()
[ -x /usr/lib/dovecot/imap ] || need_apt+=(dovecot-imapd)
[ -x /usr/lib/dovecot/pop3 ] || need_apt+=(dovecot-pop3d)
command -v python3 >/dev/null || need_apt+=(python3)
command -v node >/dev/null || need_apt+=(nodejs npm)
if [ "${#need_apt[@]}" -gt 0 ]; then
    log "installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Packages only: Dovecot's own service must not start (this script runs its own).
    policy_added=false
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=true
    fi
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
    if [ "$policy_added" = true ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
WILDDUCK_NPM="${WILDDUCK_NPM:-$HOME/.cache/tower-mail-bench/wildduck}"
if [ ! -d "$WILDDUCK_NPM/node_modules/@zone-eu/wildduck" ]; then
    log "npm install @zone-eu/wildduck into $WILDDUCK_NPM"
    mkdir -p "$WILDDUCK_NPM"
    (cd "$WILDDUCK_NPM" && npm install --no-audit --no-fund --ignore-scripts @zone-eu/wildduck >/dev/null)
fi
WILDDUCK_DIR="$WILDDUCK_NPM/node_modules/@zone-eu/wildduck"

log "building the floor, the example server and the load generator (release)"
cargo build --release --locked --example server --example load --example floor_server

# ---- mail ---------------------------------------------------------------------------------
log "seeding $MESSAGES messages"
SEED="$WORK/seed"
python3 bench/seed_maildir.py "$SEED/bench" "$MESSAGES"
python3 bench/seed_maildir.py "$SEED/idle" 10
python3 bench/seed_maildir.py "$SEED/retr" --big "$RETR_MIB"

# ---- servers ------------------------------------------------------------------------------
# The example server runs with its full default stack and JSON logs to a file (tower_config
# in bench/lib.sh).
# Idle connections hold a descriptor at each end: as many as the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * IDLE + 1000)) ]; then
    echo "open files limit $(ulimit -n) is too low for IDLE=$IDLE" >&2
    exit 1
fi

start_floor() {
    "$BIN/floor_server" --imap "127.0.0.1:$FLOOR_IMAP" --pop3 "127.0.0.1:$FLOOR_POP3" \
        >"$WORK/floor.log" 2>&1 &
    PIDS[floor]=$!
    wait_port "$FLOOR_IMAP"; wait_port "$FLOOR_POP3"
}

start_tower() {
    local dir="$WORK/tower"
    if [ ! -d "$dir/maildir" ]; then
        # The concurrency limit raised above its default of 10,000 for the growth sweep's
        # 10,000 clients at once; nothing else of the default stack changes.
        tower_config "$dir" "$TOWER_IMAP" "$TOWER_POP3" "$TOWER_IMAPS" "$TOWER_METRICS" \
            $'[limits]\nmax_connections = 20000'
        cp -a "$SEED"/. "$dir/maildir/"
    fi
    "$BIN/server" --config "$dir/server.toml" >>"$dir/server.log" 2>&1 &
    PIDS[tower]=$!
    wait_port "$TOWER_IMAP"; wait_port "$TOWER_POP3"; wait_port "$TOWER_IMAPS"
}

# The same server refusing every client (IP block on loopback): plain IMAP and POP3 answer
# `* BYE` / `-ERR`, the implicit-TLS port closes before the handshake.
start_refusing() {
    tower_config "$WORK/refuse" "$REFUSE_IMAP" "$REFUSE_POP3" "$REFUSE_IMAPS" "$REFUSE_METRICS" \
        $'[layers.ip_block]\ndeny = ["127.0.0.0/8"]'
    "$BIN/server" --config "$WORK/refuse/server.toml" >>"$WORK/refuse/server.log" 2>&1 &
    PIDS[refuse]=$!
    wait_port "$REFUSE_IMAP"; wait_port "$REFUSE_POP3"; wait_port "$REFUSE_IMAPS"
}

# Dovecot with its own configuration, as its documentation tunes it for many connections:
# login processes in high-performance mode (service_count = 0, one per core, each serving
# many clients), one mail process per logged-in session (as always). Logs to a file.
start_dovecot() {
    local dir="$WORK/dovecot"
    if [ ! -d "$dir/mail" ]; then
        mkdir -p "$dir/run" "$dir/state" "$dir/mail"
        cp -a "$SEED"/. "$dir/mail/"
        chown -R dovecot:dovecot "$dir/mail"
        printf 'bench:{PLAIN}bench\nidle:{PLAIN}idle\nretr:{PLAIN}retr\n' > "$dir/users"
        cat > "$dir/dovecot.conf" <<EOF
instance_name = tower-mail-bench
base_dir = $dir/run
state_dir = $dir/state
protocols = imap pop3
listen = 127.0.0.1
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN $dir/users
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$dir/mail/%u
}
first_valid_uid = 1
mail_location = maildir:$dir/mail/%u
default_client_limit = 20000
default_process_limit = 4096
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_IMAP
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = $(nproc)
  client_limit = 10000
  vsz_limit = 1G
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DOVECOT_POP3
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = $(nproc)
  client_limit = 10000
  vsz_limit = 1G
}
service anvil {
  client_limit = 30000
}
service auth {
  client_limit = 30000
}
service imap {
  process_limit = 4096
}
service pop3 {
  process_limit = 4096
}
protocol imap {
  mail_max_userip_connections = 100000
}
protocol pop3 {
  mail_max_userip_connections = 100000
}
EOF
    fi
    dovecot -F -c "$dir/dovecot.conf" >>"$dir/stderr.log" 2>&1 &
    PIDS[dovecot]=$!
    wait_port "$DOVECOT_IMAP"; wait_port "$DOVECOT_POP3"
}

start_wildduck() {
    node bench/wildduck.js "$WILDDUCK_DIR" "$WILDDUCK_IMAP" "$WILDDUCK_POP3" "$WORK/wildduck.log" \
        >>"$WORK/wildduck.out" 2>&1 &
    PIDS[wildduck]=$!
    wait_port "$WILDDUCK_IMAP"; wait_port "$WILDDUCK_POP3"
}

stop() { # name
    local pid="${PIDS[$1]}"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PIDS[$1]"
}

restart() { # name
    stop "$1"
    "start_$1"
}

# ---- measuring ----------------------------------------------------------------------------
mkdir -p "$OUT"
RAW="$OUT/raw.jsonl"
: > "$RAW"

# load LABEL ROUND MODE ARGS...: one run of the load generator, its JSON line kept with the
# round. A failed run stops the comparison: a figure over failures means nothing.
load() {
    local label="$1" round="$2"
    shift 2
    local line
    line="$("$BIN/load" "$@" --label "$label" | tail -n 1)"
    printf '%s\n' "$line" | python3 bench/report.py --keep "$round" >> "$RAW"
    printf '%s\n' "$line" | python3 bench/report.py --line "$label" >&2
}

# rotate ROUND ITEMS...: the items, starting at ROUND modulo their count.
rotate() {
    local round="$1"; shift
    local items=("$@") n="$#"
    for ((k = 0; k < n; k++)); do printf '%s\n' "${items[$(((round + k) % n))]}"; done
}

log "starting the servers"
start_floor; start_tower; start_refusing; start_dovecot; start_wildduck

machine() {
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "ram: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "tower-mail: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "dovecot: $(dovecot --version)"
    echo "node: $(node --version)"
    echo "wildduck: $(node -p "require('$WILDDUCK_DIR/package.json').version")"
    echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rounds: $ROUNDS x $CONNECTIONS connections, $CONCURRENCY at once"
}
machine > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

rate_args=(--connections "$CONNECTIONS" --concurrency "$CONCURRENCY")
# Warm every server once, so that no round pays for first connections.
for target in floor:$FLOOR_IMAP tower:$TOWER_IMAP dovecot:$DOVECOT_IMAP wildduck:$WILDDUCK_IMAP; do
    "$BIN/load" imap-greet --addr "127.0.0.1:${target#*:}" --connections 2000 --warmup 0 >/dev/null
done

for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS: IMAP connect, greeting, LOGOUT"
    for target in $(rotate "$round" floor:$FLOOR_IMAP tower:$TOWER_IMAP dovecot:$DOVECOT_IMAP wildduck:$WILDDUCK_IMAP); do
        load "${target%%:*}" "$round" imap-greet --addr "127.0.0.1:${target#*:}" "${rate_args[@]}"
    done
    log "round $round of $ROUNDS: POP3 connect, greeting, QUIT"
    for target in $(rotate "$round" floor:$FLOOR_POP3 tower:$TOWER_POP3 dovecot:$DOVECOT_POP3 wildduck:$WILDDUCK_POP3); do
        load "${target%%:*}" "$round" pop3-greet --addr "127.0.0.1:${target#*:}" "${rate_args[@]}"
    done
    log "round $round of $ROUNDS: refusals (tower-mail's IP block) beside the floor's greeting"
    for target in $(rotate "$round" floor-imap:$FLOOR_IMAP refuse-imap:$REFUSE_IMAP refuse-pop3:$REFUSE_POP3 refuse-imaps:$REFUSE_IMAPS); do
        mode=refusal
        [ "${target%%:*}" = floor-imap ] && mode=imap-greet
        load "${target%%:*}" "$round" "$mode" --addr "127.0.0.1:${target#*:}" "${rate_args[@]}"
    done
done

log "memory per idle connection ($IDLE before login, $IDLE_LOGIN after LOGIN + SELECT)"
# Each measurement on a fresh server process: memory that an earlier load grew and freed
# stays with the process's allocator, and the next load would reuse it for nothing.
idle_run() { # round server label args...
    local round="$1" name="$2" label="$3"
    shift 3
    restart "$name"
    load "$label" "$round" idle --pid "${PIDS[$name]}" "$@"
}
for round in 1 2; do
    for name in $(rotate "$round" floor tower dovecot wildduck); do
        case "$name" in
            floor) imap=$FLOOR_IMAP pop3=$FLOOR_POP3 ;;
            tower) imap=$TOWER_IMAP pop3=$TOWER_POP3 ;;
            dovecot) imap=$DOVECOT_IMAP pop3=$DOVECOT_POP3 ;;
            wildduck) imap=$WILDDUCK_IMAP pop3=$WILDDUCK_POP3 ;;
        esac
        idle_run "$round" "$name" "$name" --protocol imap --addr "127.0.0.1:$imap" \
            --connections "$IDLE" --warmup 200 --concurrency 64
        idle_run "$round" "$name" "$name" --protocol pop3 --addr "127.0.0.1:$pop3" \
            --connections "$IDLE" --warmup 200 --concurrency 64
        [ "$name" = floor ] && continue
        user=idle password=idle
        [ "$name" = wildduck ] && user=testuser password=pass
        idle_run "$round" "$name" "$name-login" --protocol imap --login --addr "127.0.0.1:$imap" \
            --user "$user" --password "$password" \
            --connections "$IDLE_LOGIN" --warmup 50 --concurrency 16 --settle 2000
    done
done

log "UID FETCH 1:* (FLAGS ENVELOPE) and FETCH 1:* (BODYSTRUCTURE), $MESSAGES messages"
fetch_args=(--user bench --password bench --timeout 300)
# First open: neither server has seen the mailbox (Dovecot has no index yet, tower-mail has
# not listed the folder); the files are in the page cache, just written.
load tower "first" imap-fetch --addr "127.0.0.1:$TOWER_IMAP" "${fetch_args[@]}"
load dovecot "first" imap-fetch --addr "127.0.0.1:$DOVECOT_IMAP" "${fetch_args[@]}"
for round in $(seq "$FETCH_ROUNDS"); do
    for target in $(rotate "$round" tower:$TOWER_IMAP dovecot:$DOVECOT_IMAP); do
        load "${target%%:*}" "$round" imap-fetch --addr "127.0.0.1:${target#*:}" "${fetch_args[@]}"
    done
done
# After a restart: the servers' processes are new; what they keep on disk (Dovecot's index
# and cache files, tower-mail's UID list) is all they have.
for round in $(seq "$FETCH_ROUNDS"); do
    for name in $(rotate "$round" tower dovecot); do
        restart "$name"
        port=$TOWER_IMAP
        [ "$name" = dovecot ] && port=$DOVECOT_IMAP
        load "$name" "restart-$round" imap-fetch --addr "127.0.0.1:$port" "${fetch_args[@]}"
    done
done

log "POP3 RETR of a $RETR_MIB MiB message"
for round in $(seq "$FETCH_ROUNDS"); do
    for target in $(rotate "$round" tower:$TOWER_POP3 dovecot:$DOVECOT_POP3); do
        load "${target%%:*}" "$round" pop3-retr --addr "127.0.0.1:${target#*:}" \
            --user retr --password retr --connections 5
    done
done

# The servers' log sizes: each wrote a line or more per connection to a file.
for f in tower/server.log refuse/server.log dovecot/dovecot.log wildduck.log; do
    echo "log $f: $(wc -l < "$WORK/$f") lines" >> "$OUT/machine.txt"
done

. bench/growth.sh

echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
python3 bench/report.py "$OUT"
