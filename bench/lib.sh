# What bench/compare.sh and bench/smoke.sh share; sourced, not run.

# wait_port PORT: wait until something accepts on 127.0.0.1:PORT (at most 30 s).
wait_port() {
    for _ in $(seq 300); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1).close()" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# tower_config DIR IMAP_PORT POP3_PORT IMAPS_PORT METRICS_PORT EXTRA_TOML: the example server's settings
# in DIR/server.toml, with users bench, idle and retr (passwords as the names) in
# DIR/users.passwd and mail under DIR/maildir. Its full default stack (logging, metrics
# recorder, hooks, every policy layer), JSON logs; every client comes from 127.0.0.1, so the
# per-address limits are lifted, and so is the per-user session cap (the idle load logs one
# user in hundreds of times). IMAPS_PORT "" turns implicit TLS off; the metrics listener
# stays on (the Prometheus recorder is part of the default stack).
tower_config() {
    local dir="$1"
    mkdir -p "$dir/maildir"
    printf 'bench:{PLAIN}bench\nidle:{PLAIN}idle\nretr:{PLAIN}retr\n' > "$dir/users.passwd"
    cat > "$dir/server.toml" <<EOF
[imap]
listen = "127.0.0.1:$2"
tls_listen = "${4:+127.0.0.1:$4}"
[pop3]
listen = "127.0.0.1:$3"
tls_listen = ""
[store]
maildir = "$dir/maildir"
[auth]
passwd_file = "$dir/users.passwd"
max_sessions_per_user = 0
[metrics]
listen = "127.0.0.1:$5"
[log]
format = "json"
[layers.rate_limit]
max_concurrent_per_ip = 0
$6
EOF
}

# load_field FIELD: read the load generator's output on stdin and print one field of its
# JSON summary line (the last line).
load_field() {
    tail -n 1 | python3 -c "import json, sys; print(json.load(sys.stdin)['load'].get('$1'))"
}
