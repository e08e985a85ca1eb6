#!/bin/bash
# Power loss under the example server: acknowledged APPENDs, STOREs and DELEs survive it.
#
#   bash tests/power_loss.sh [ROUNDS]        (default 3; PROFILE=debug for the debug build)
#
# A killed process keeps what it wrote in the kernel's page cache; a machine that loses power
# does not. So the server runs in a QEMU guest (software emulation, Debian's cloud kernel, a
# busybox initramfs) on an ext4 disk image, and the guest itself is killed: whatever the guest
# kernel had not written to its disk is gone, as at a power cut. The journal commits only every
# 60 s and dirty pages wait as long, so anything the server did not fsync is still in the
# guest's memory when it dies.
#
# Each round boots the guest, starts the server on the disk, and runs clients in a loop: IMAP
# APPENDs (each acknowledged `OK` printed with the message's number); every third turn, a
# STORE of \Flagged on the newest message (its `OK` printed with the message's number); every
# fourth turn, a POP3 session that reads message 1's Subject, DELEs it and QUITs (the `+OK` to
# QUIT printed). After an acknowledgement chosen at random the host kills QEMU. A second boot
# mounts the disk (the journal is replayed), starts the server on it, and lists the Subjects
# and flags of INBOX over IMAP. Every acknowledged message not acknowledged as deleted must be
# there, every acknowledged flag set on those, every acknowledged deletion gone, and the
# server must start on the tree and answer within seconds (no lock the cut left may hold it
# up). Rounds share the disk, so later rounds also start on a tree that lost power before.
#
# Installs qemu-system-x86, busybox-static, cpio and e2fsprogs from Debian if missing, and
# downloads the kernel package into a scratch folder (not installed): see tests/guest.sh.
set -euo pipefail
rounds="${1:-3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT

. "$root/tests/guest.sh"
guest_prepare "$work" e2fsprogs

# PROFILE=debug takes the build `cargo test` made (CI); release by default.
profile="${PROFILE:-release}"
profile_flag=()
[ "$profile" = release ] && profile_flag=(--release)
(cd "$root" && cargo build -q --locked "${profile_flag[@]}" --example server)

guest="$guest_root"
mkdir -p "$guest"/{mnt,etc,modules}
guest_binary "${CARGO_TARGET_DIR:-$root/target}/$profile/examples/server"
# The disk's driver, in the order the modules need each other.
for module in virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev \
    virtio/virtio_pci_legacy_dev virtio/virtio_pci block/virtio_blk; do
    cp "$guest_drivers/$module.ko" "$guest/modules/"
done
printf 'demo:{PLAIN}demo\n' > "$guest/etc/users.passwd"
cat > "$guest/etc/server.toml" <<'EOF'
[imap]
listen = "127.0.0.1:143"
tls_listen = ""
[pop3]
listen = "127.0.0.1:110"
tls_listen = ""
[store]
maildir = "/mnt/maildir"
[auth]
passwd_file = "/etc/users.passwd"
[metrics]
listen = ""
EOF

cat > "$guest/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mkdir -p /dev && mount -t devtmpfs dev /dev
ip link set lo up
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    insmod /modules/$m.ko
done
# Nothing reaches the disk unless the server asks for it (fsync) within the round.
echo 6000 > /proc/sys/vm/dirty_expire_centisecs
echo 6000 > /proc/sys/vm/dirty_writeback_centisecs
mount -t ext4 -o commit=60 /dev/vda /mnt || { echo "MOUNT FAILED"; poweroff -f; }
mkdir -p /mnt/maildir
phase="$(sed -n 's/.*phase=\([a-z]*\).*/\1/p' /proc/cmdline)"
round="$(sed -n 's/.*round=\([0-9]*\).*/\1/p' /proc/cmdline)"
server --config /etc/server.toml >/tmp/server.log 2>&1 &
server_pid=$!
until printf 'a LOGOUT\r\n' | nc 127.0.0.1 143 2>/dev/null | grep -q '^\* OK'; do
    kill -0 $server_pid 2>/dev/null || { echo "SERVER FAILED"; cat /tmp/server.log; poweroff -f; }
    sleep 0.1
done
echo READY
imap() { printf '%b' "$1" | nc 127.0.0.1 143; }
pop3() { printf '%b' "$1" | nc 127.0.0.1 110; }
if [ "$phase" = check ]; then
    imap 'a LOGIN demo demo\r\nb SELECT INBOX\r\nc UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nd LOGOUT\r\n' \
        | tr -d '\r' | awk '/ FETCH \(/ { flagged = index($0, "\\Flagged") > 0 }
            /^Subject: power-loss / { print "PRESENT " $3; if (flagged) print "FLAGGED-NOW " $3 }'
    echo "CHECKED at $(cut -d' ' -f1 /proc/uptime) s"
    kill -TERM $server_pid; wait $server_pid
    umount /mnt
    poweroff -f
fi
n=0
while true; do
    n=$((n + 1))
    id="$round$(printf '%05d' $n)"
    message="Subject: power-loss $id\r\n\r\nbody $id\r\n"
    size=$(printf '%b' "$message" | wc -c)
    imap "a LOGIN demo demo\r\nb APPEND INBOX {$size+}\r\n$message\r\nc LOGOUT\r\n" \
        | grep -q '^b OK' && echo "APPENDED $id"
    if [ $((n % 4)) = 0 ]; then
        echo DELETING
        answer="$(pop3 'USER demo\r\nPASS demo\r\nTOP 1 0\r\nDELE 1\r\nQUIT\r\n' | tr -d '\r')"
        deleted="$(echo "$answer" | sed -n 's/^Subject: power-loss \([0-9]*\).*/\1/p')"
        # Acknowledged once QUIT, which commits the deletion, answers +OK.
        if [ -n "$deleted" ] && echo "$answer" | tail -n 1 | grep -q '^+OK'; then
            echo "DELETED $deleted"
        fi
    fi
    if [ $((n % 3)) = 0 ]; then
        # The newest message flagged, acknowledged by STORE's OK; its Subject names it.
        answer="$(imap 'a LOGIN demo demo\r\nb SELECT INBOX\r\nc STORE * +FLAGS (\\Flagged)\r\nd FETCH * (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\ne LOGOUT\r\n' | tr -d '\r')"
        flagged="$(echo "$answer" | sed -n 's/^Subject: power-loss \([0-9]*\).*/\1/p' | tail -n 1)"
        if [ -n "$flagged" ] && echo "$answer" | grep -q '^c OK'; then
            echo "FLAGGED $flagged"
        fi
    fi
done
EOF
chmod +x "$guest/init"
guest_initrd "$work/initrd"

disk="$work/disk.img"
truncate -s 128M "$disk"
mkfs.ext4 -q -F "$disk"

# boot PHASE ROUND: the guest's console, as it comes (QEMU writes it unbuffered).
boot() {
    qemu-system-x86_64 -machine q35 -cpu max -smp 1 -m 1024 -accel tcg -no-reboot -nographic \
        -kernel "$guest_vmlinuz" -initrd "$work/initrd" \
        -drive "file=$disk,format=raw,if=virtio,cache=writeback" \
        -append "console=ttyS0 quiet panic=-1 phase=$1 round=$2" 2>&1
}

: > "$work/expected"   # message ids that must be present
: > "$work/deleted"    # message ids that must be gone
: > "$work/flagged"    # message ids that must be \Flagged while they are there
for round in $(seq "$rounds"); do
    cut_after=$((5 + RANDOM % 20))
    # The write phase, killed once `cut_after` acknowledgements of either kind are out.
    boot write "$round" > "$work/write.$round" &
    guest=$!
    while [ "$(grep -cE 'APPENDED|DELETED|FLAGGED' "$work/write.$round")" -lt "$cut_after" ]; do
        if grep -q FAILED "$work/write.$round" || ! kill -0 "$guest" 2>/dev/null; then
            echo "round $round: the guest stopped:" >&2
            cat "$work/write.$round" >&2
            exit 1
        fi
        sleep 0.1
    done
    pkill -KILL -f "phase=write round=$round"
    wait "$guest" || true
    # Every acknowledgement the guest printed before it died, however many came after the cut
    # was decided.
    sed -n 's/.*APPENDED \([0-9]*\).*/\1/p' "$work/write.$round" >> "$work/expected"
    sed -n 's/.*DELETED \([0-9]*\).*/\1/p' "$work/write.$round" >> "$work/deleted"
    sed -n 's/.*FLAGGED \([0-9]*\).*/\1/p' "$work/write.$round" >> "$work/flagged"
    acks="$(grep -cE 'APPENDED|DELETED|FLAGGED' "$work/write.$round")"
    # A POP3 session cut before its QUIT was answered may or may not have deleted its message 1:
    # the oldest message still expected, since messages are numbered in the order they came.
    in_flight=""
    if [ "$(grep -oE 'APPENDED|DELETED|DELETING' "$work/write.$round" | tail -n 1)" = DELETING ]; then
        in_flight="$(sort -u "$work/expected" | comm -23 - <(sort -u "$work/deleted") | sort -n | head -n 1)"
    fi

    # The machine stays off for a few seconds, as it does for longer at any real power cut
    # (firmware alone takes that): a lock made before the boot is then older than the boot.
    sleep 3
    boot check "$round" > "$work/check.$round"
    grep -q CHECKED "$work/check.$round" || { echo "round $round: the check did not finish:" >&2; cat "$work/check.$round" >&2; exit 1; }
    sed -n 's/.*PRESENT \([0-9]*\).*/\1/p' "$work/check.$round" | sort -u > "$work/present"
    if [ -n "$in_flight" ] && ! grep -qx "$in_flight" "$work/present"; then
        echo "$in_flight" >> "$work/deleted"
    fi
    sort -u "$work/deleted" > "$work/gone"
    missing="$(sort -u "$work/expected" | comm -23 - "$work/gone" | comm -23 - "$work/present")"
    resurrected="$(comm -12 "$work/gone" "$work/present")"
    sed -n 's/.*FLAGGED-NOW \([0-9]*\).*/\1/p' "$work/check.$round" | sort -u > "$work/flagged_now"
    unflagged="$(sort -u "$work/flagged" | comm -12 - "$work/present" | comm -23 - "$work/flagged_now")"
    checked="$(grep -ao 'CHECKED at [0-9.]* s' "$work/check.$round" | sed 's/CHECKED at //')"
    echo "round $round: power cut after $acks acknowledgements${in_flight:+ (a deletion of $in_flight in flight)};" \
        "$(wc -l < "$work/present") messages present, $(wc -l < "$work/gone") deleted so far;" \
        "$(wc -l < "$work/flagged_now") flagged; missing: ${missing:-none}; deleted but present: ${resurrected:-none};" \
        "flag lost: ${unflagged:-none}; restarted and checked ${checked} after boot"
    if [ -n "$missing" ] || [ -n "$resurrected" ] || [ -n "$unflagged" ]; then
        echo "FAILED: an acknowledged change did not survive the power cut" >&2
        exit 1
    fi
    # Seconds, not minutes: a lock the cut left must not hold the restart up for its stale
    # time (two minutes for the UID list's).
    if [ "${checked%%.*}" -ge 60 ]; then
        echo "FAILED: the restarted server answered only ${checked} s after boot" >&2
        exit 1
    fi
done
echo "power loss: every acknowledged APPEND, DELE and STORE survived $rounds power cuts"
