# A QEMU guest for the checks that need a whole machine (tests/power_loss.sh) or a count of
# everything it executes (bench/instructions.sh): Debian's cloud kernel and a busybox
# initramfs holding the project's binaries. Sourced, not run.

# guest_prepare WORK [PACKAGE...]: installs qemu-system-x86, busybox-static, cpio and the
# given packages from Debian where missing, and unpacks the cloud kernel's package (not
# installed) into WORK/kernel. Sets guest_vmlinuz, guest_drivers (the kernel's module tree of
# drivers) and guest_root (WORK/root, the initramfs's tree, with busybox in it).
guest_prepare() {
    local work="$1"
    shift
    local need=() package
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    [ -x /bin/busybox ] || need+=(busybox-static)
    command -v cpio >/dev/null || need+=(cpio)
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
    done
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    fi
    local kernel_pkg
    kernel_pkg="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
    (cd "$work" && apt-get download -q "$kernel_pkg" >/dev/null 2>&1 && dpkg-deb -x ./*.deb kernel)
    guest_vmlinuz="$(ls "$work"/kernel/boot/vmlinuz-*)"
    guest_drivers="$(ls -d "$work"/kernel/lib/modules/*)/kernel/drivers"
    guest_root="$work/root"
    mkdir -p "$guest_root"/{bin,proc,sys,tmp,lib64}
    cp /bin/busybox "$guest_root/bin/"
}

# guest_binary PATH: PATH stripped into the guest's /bin, with the libraries it links at the
# paths its loader looks for them.
guest_binary() {
    local bin
    bin="$guest_root/bin/$(basename "$1")"
    strip -o "$bin" "$1"
    ldd "$bin" | awk '/=> \// {print $3} /^\t\/lib64/ {print $1}' | while read -r lib; do
        mkdir -p "$guest_root$(dirname "$lib")"
        cp -L "$lib" "$guest_root$lib"
    done
}

# guest_initrd OUT: the guest's tree (with its /init written by the caller) as an initramfs.
guest_initrd() {
    (cd "$guest_root" && find . | cpio -o -H newc --quiet) > "$1"
}
