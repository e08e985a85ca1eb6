#!/bin/bash
# Every instruction a connection costs, kernel and user, client and server: the full stack
# against no stack, counted where the machine has no hardware counters.
#
#   bash bench/instructions.sh [ROUNDS]        (default 3; about 30 s of emulation a round)
#
# `perf stat -e instructions` is the plain way to count them, and this VM has no PMU for it;
# callgrind counts user space only, where a connection's accept, reads, writes and close in the
# kernel do not show. So the count comes from QEMU instead. Under `-icount shift=0` the guest's
# clocks advance one nanosecond for each instruction the emulated CPU executes, so a
# CLOCK_MONOTONIC interval inside the guest is the number of instructions executed in it by
# everything: the kernel's TCP path, both ends of every connection, interrupts. The script
# checks that first with a loop of a known length, and stops if the clock does not agree.
#
# The guest is Debian's cloud kernel with a busybox initramfs holding `connect_bench` (release
# build) and its libraries: one CPU, which never idles during a run (the script checks), and
# `mitigations=off`, which makes the kernel's share smaller and so the ratio, if anything,
# less flattering. Each stack runs at two sizes and the difference is divided by the
# connections between them (4,400: the warm-up is a tenth of `--connections`), so boot,
# process start and the metrics recorder's calibration cancel out.
#
# Installs qemu-system-x86, busybox-static and cpio from Debian if missing, and downloads the
# kernel package into a scratch folder (not installed): see tests/guest.sh.
set -euo pipefail
rounds="${1:-3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

. "$root/tests/guest.sh"
guest_prepare "$work"

(cd "$root" && cargo build -q --release --example connect_bench)

guest="$guest_root"
guest_binary "$root/target/release/examples/connect_bench"
# The clock's check: `dec; jnz` runs twice per count.
printf '#include <stdlib.h>\nint main(int c, char **v) { long n = atol(v[1]); __asm__ volatile("1: dec %%0\\n jnz 1b" : "+r"(n)); return 0; }\n' > "$work/loop.c"
gcc -O1 -static -o "$guest/bin/loop" "$work/loop.c"

cat > "$guest/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
ip link set lo up
now() { awk '/^now at/ {print \$3; exit}' /proc/timer_list; }
idle() { awk '/^cpu / {print \$5; exit}' /proc/stat; }
for n in 100000000 200000000; do
    t0=\$(now); loop \$n; t1=\$(now)
    echo "LOOP \$n \$((t1 - t0))"
done
for round in \$(seq $rounds); do for stack in bare full; do for n in 1000 5000; do
    t0=\$(now); i0=\$(idle)
    connect_bench --only \$stack --prometheus --connections \$n --rounds 1 --concurrency 8 >/tmp/out 2>&1 || { echo FAILED; cat /tmp/out; }
    t1=\$(now); i1=\$(idle)
    echo "RUN \$round \$stack \$n \$((t1 - t0)) \$((i1 - i0))"
done; done; done
poweroff -f
EOF
chmod +x "$guest/init"
guest_initrd "$work/initrd"

qemu-system-x86_64 -machine q35 -cpu max -smp 1 -m 2048 -accel tcg -icount shift=0,sleep=off \
    -kernel "$guest_vmlinuz" -initrd "$work/initrd" -no-reboot -nographic \
    -append "console=ttyS0 quiet panic=-1 mitigations=off" 2>&1 | tr -d '\r' | grep -aoE '(LOOP|RUN|FAILED).*' > "$work/lines" || true

python3 - "$work/lines" "$(basename "$guest_vmlinuz")" <<'EOF'
import collections, statistics, sys
lines = [l.split() for l in open(sys.argv[1])]
if any(l[0] == "FAILED" for l in lines) or not lines:
    sys.exit("the guest run failed:\n" + open(sys.argv[1]).read())
loop = {int(l[1]): int(l[2]) for l in lines if l[0] == "LOOP"}
# 2 instructions per count: the difference of the two loops is 2e8 instructions.
per_instruction = (loop[200000000] - loop[100000000]) / 2e8
if abs(per_instruction - 1) > 0.001:
    sys.exit(f"the guest clock is not one nanosecond per instruction ({per_instruction:.5f})")
runs = collections.defaultdict(dict)
for _, rnd, stack, n, ns, idle in (l for l in lines if l[0] == "RUN"):
    if int(idle) != 0:
        sys.exit(f"the guest idled during round {rnd} {stack} {n}: the count would miss time")
    runs[(rnd, stack)][int(n)] = int(ns)
per = collections.defaultdict(list)
for (rnd, stack), by_n in sorted(runs.items()):
    per[stack].append((by_n[5000] - by_n[1000]) / 4400)
print(f"kernel {sys.argv[2]}; clock check: {per_instruction:.5f} ns per instruction")
print("instructions per connection, kernel and user, client and server:")
for stack in ("bare", "full"):
    print(f"  {stack}: " + ", ".join(f"{v:,.0f}" for v in per[stack]))
ratios = [f / b for b, f in zip(per["bare"], per["full"])]
print("full / bare by round: " + ", ".join(f"{r:.4f}" for r in ratios))
print(f"median {statistics.median(ratios):.4f}x; extra {statistics.median(per['full']) - statistics.median(per['bare']):,.0f} instructions")
EOF
