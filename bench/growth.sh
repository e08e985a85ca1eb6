# How tower-mail's cost grows, and the memory rows the load generator cannot measure alone:
# sourced by bench/compare.sh after its other loads, with its servers, variables and `load`
# function. Every row lands in raw.jsonl like the others; bench/report.py makes the tables.

# listen_overflows: connections the kernel dropped since boot because a listen queue was
# full (their clients wait out a SYN retransmission, one second and more).
listen_overflows() {
    awk '$1 == "TcpExt:" {
        if (!seen) { for (i = 2; i <= NF; i++) name[i] = $i; seen = 1 }
        else { for (i = 2; i <= NF; i++) if (name[i] == "ListenOverflows") print $i }
    }' /proc/net/netstat
}

# cpu_ticks PID: the process's user and system CPU time so far, in clock ticks.
cpu_ticks() {
    awk '{print $14, $15}' "/proc/$1/stat"
}

# clients_run LABEL CLIENTS PORT PID: one rate run with CLIENTS at once, its row carrying the
# listen-queue overflows during it and the server's CPU time per connection (user and system,
# microseconds). Long runs (GROWTH_CONNECTIONS), so that the burst of the first CLIENTS
# connects and any one-second retransmission do not decide the figure.
clients_run() {
    local before line cpu_before cpu_after
    before="$(listen_overflows)"
    cpu_before="$(cpu_ticks "$4")"
    line="$("$BIN/load" imap-greet --addr "127.0.0.1:$3" --connections "$GROWTH_CONNECTIONS" \
        --concurrency "$2" --warmup 0 --label "$1" | tail -n 1)"
    cpu_after="$(cpu_ticks "$4")"
    read -r user sys < <(python3 -c "
before, after = '$cpu_before'.split(), '$cpu_after'.split()
per = 1e6 / $(getconf CLK_TCK) / $GROWTH_CONNECTIONS
print(*(round((int(b) - int(a)) * per, 2) for a, b in zip(before, after)))")
    printf '%s\n' "$line" | python3 bench/report.py --keep "$2" \
        "listen_overflows=$(($(listen_overflows) - before))" \
        "server_user_us_per_conn=$user" "server_sys_us_per_conn=$sys" >> "$RAW"
    printf '%s\n' "$line" | python3 bench/report.py --line "$1 x$2" >&2
}

log "connection rate by clients at once (tower-mail beside the floor)"
for clients in $GROWTH_CLIENTS; do
    for name in $(rotate "$clients" floor tower); do
        port=$FLOOR_IMAP
        [ "$name" = tower ] && port=$TOWER_IMAP
        clients_run "$name-clients" "$clients" "$port" "${PIDS[$name]}"
    done
done

# The kernel caps every listen queue at net.core.somaxconn (4,096 on Debian 12): more clients
# than that connecting at once overflow it whenever the accept loop is behind. Once more with
# the caps raised and an example server asking for a long queue (`[limits] listen_backlog`),
# as an operator expecting such bursts would run it; the caps are put back at exit.
if sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 2>/dev/null; then
    log "the same with a listen queue of 65,535 (tower-mail)"
    tower_config "$WORK/deep" "$DEEP_IMAP" "$DEEP_POP3" "" "$DEEP_METRICS" \
        $'[limits]\nmax_connections = 20000\nlisten_backlog = 65535'
    "$BIN/server" --config "$WORK/deep/server.toml" >>"$WORK/deep/server.log" 2>&1 &
    PIDS[deep]=$!
    wait_port "$DEEP_IMAP"
    for clients in $GROWTH_CLIENTS; do
        clients_run tower-deep-clients "$clients" "$DEEP_IMAP" "${PIDS[deep]}"
    done
    stop deep
    restore_listen_queues
fi

log "memory by idle connections (tower-mail, IMAP before login, a fresh process each)"
for count in $GROWTH_IDLE; do
    restart tower
    load tower-idle-count "$count" idle --pid "${PIDS[tower]}" --protocol imap \
        --addr "127.0.0.1:$TOWER_IMAP" --connections "$count" --warmup 200 --concurrency 64
done

log "memory over connect/close cycles (tower-mail, a fresh process)"
restart tower
cycles=0
for step in $(seq "$GROWTH_CYCLE_STEPS"); do
    "$BIN/load" imap-greet --addr "127.0.0.1:$TOWER_IMAP" --connections 20000 --concurrency 100 \
        --warmup 0 >/dev/null
    "$BIN/load" pop3-greet --addr "127.0.0.1:$TOWER_POP3" --connections 20000 --concurrency 100 \
        --warmup 0 >/dev/null
    cycles=$((cycles + 40000))
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/${PIDS[tower]}/status")
    printf '{"mode": "cycles", "label": "tower", "round": %d, "rss_kib": %d}\n' "$cycles" "$rss" >> "$RAW"
    printf '  cycles %-8d resident %d KiB\n' "$cycles" "$rss" >&2
done

log "memory per idle implicit-TLS connection before login (tower-mail)"
for round in 1 2; do
    restart tower
    line="$(python3 bench/idle_tls.py --port "$TOWER_IMAPS" --pid "${PIDS[tower]}" \
        --connections "$IDLE" --label tower | tail -n 1)"
    printf '%s\n' "$line" | python3 bench/report.py --keep "$round" >> "$RAW"
    printf '%s\n' "$line" | python3 bench/report.py --line tower-tls >&2
done

log "1,000 sessions with the $MESSAGES-message INBOX selected (tower-mail, a fresh process)"
restart tower
load tower-login-big 1 idle --pid "${PIDS[tower]}" --protocol imap --login --user bench \
    --password bench --addr "127.0.0.1:$TOWER_IMAP" --connections 1000 --warmup 50 \
    --concurrency 16 --settle 2000

log "FETCH by messages in the mailbox ($GROWTH_MAILBOXES), tower-mail and Dovecot"
for count in $GROWTH_MAILBOXES; do
    user="sweep$count"
    python3 bench/seed_maildir.py "$WORK/tower/maildir/$user" "$count"
    cp -a "$WORK/tower/maildir/$user" "$WORK/dovecot/mail/$user"
    chown -R dovecot:dovecot "$WORK/dovecot/mail/$user"
    printf '%s:{PLAIN}%s\n' "$user" "$user" >> "$WORK/tower/users.passwd"
    printf '%s:{PLAIN}%s\n' "$user" "$user" >> "$WORK/dovecot/users"
done
# The example server reads its passwd-file again when it changes; restarted anyway, so that
# every size starts from a process that has not listed any of these folders.
restart tower
for count in $GROWTH_MAILBOXES; do
    user="sweep$count"
    for round in first 1 2; do
        for name in $(rotate "$count" tower dovecot); do
            port=$TOWER_IMAP
            [ "$name" = dovecot ] && port=$DOVECOT_IMAP
            load "$name-sweep" "$count-$round" imap-fetch --addr "127.0.0.1:$port" \
                --user "$user" --password "$user" --timeout 300
        done
    done
done
