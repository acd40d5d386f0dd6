#!/usr/bin/env bash
# `chinwag bench conns` at 100,000 connections, inside a throwaway virtual
# machine, for a host whose open-file limit is too low and cannot be raised
# (a container without CAP_SYS_RESOURCE). The guest is a Debian kernel and
# an initramfs holding busybox, chinwagd, chinwag and their libraries; its
# /init raises the limit, starts the hub, runs the bench, prints the bench's
# JSON line and powers off. Nothing is written outside a temporary folder.
#
#   apt-get install -y qemu-system-x86 busybox-static cpio
#   cargo build --release -p chinwagd -p chinwag-client
#   docs/bench/conns_vm.sh                        # 100,000, as in docs/performance.md
#   COUNT=2000 docs/bench/conns_vm.sh             # a quick check of the set-up
#
# Settings (environment): COUNT connections (100000), PING the hub's
# --ping-interval in seconds (30, its default), TIMEOUT the bench's
# --timeout (1800), MEM the guest's memory (12G), BIN the folder with the
# release binaries (target/release), ACCEL `tcg` (software emulation, the
# default) or `kvm`. TCG is many times slower than the host, and the
# figures that matter here are connections held and bytes per connection,
# not rates. (Nested KVM in our sandbox failed to boot a guest.)
set -euo pipefail

COUNT=${COUNT:-100000}
PING=${PING:-30}
TIMEOUT=${TIMEOUT:-1800}
MEM=${MEM:-12G}
ACCEL=${ACCEL:-tcg}
BIN=${BIN:-target/release}

for tool in qemu-system-x86_64 busybox cpio; do
  command -v "$tool" >/dev/null || { echo "needs $tool (see the top of $0)" >&2; exit 2; }
done
for bin in chinwagd chinwag; do
  [ -x "$BIN/$bin" ] || { echo "needs $BIN/$bin: cargo build --release first" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A Debian kernel, unpacked from its package.
(cd "$work" && apt-get download "$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: //p' | head -1)" >/dev/null)
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
kernel=$(ls "$work"/kernel/boot/vmlinuz-*)

# The initramfs: busybox, the two programs and the libraries they link.
root="$work/root"
mkdir -p "$root"/{bin,proc,sys,dev,tmp}
cp "$(command -v busybox)" "$root/bin/"
for applet in sh mount ip sysctl cat sed tr grep sleep free poweroff uname; do
  ln -s busybox "$root/bin/$applet"
done
for bin in chinwagd chinwag; do
  cp "$BIN/$bin" "$root/bin/"
  for lib in $(ldd "$BIN/$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")" && cp -n "$lib" "$root$lib"
  done
done
cat > "$root/init" <<EOF
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
ip link set lo up
# Four source addresses of 64,000 ports each; room for the connect burst.
sysctl -w net.ipv4.ip_local_port_range="1024 65535" >/dev/null
sysctl -w net.core.somaxconn=65535 >/dev/null
sysctl -w net.ipv4.tcp_max_syn_backlog=65535 >/dev/null
# Both ends of every connection are in this VM: two descriptors each.
ulimit -n $((2 * COUNT + 10000))
echo "guest: \$(uname -r), \$(grep -c ^processor /proc/cpuinfo) cpus, nofile \$(ulimit -n)"
chinwagd --max-connections $((COUNT + 1000)) --max-unregistered 20000 --ping-interval $PING --log warn &
HUB=\$!
sleep 1
chinwag --server 127.0.0.1:2446 --json bench conns --count $COUNT --source-ips 4 --no-presence --server-pid \$HUB --timeout $TIMEOUT
echo "bench exit status \$?"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initrd.gz")

if [ "$ACCEL" = kvm ]; then
  accel=(-accel kvm -cpu host)
else
  accel=(-accel tcg,thread=multi -cpu max)
fi
echo "booting ($ACCEL): $COUNT connections, ping every $PING s" >&2
qemu-system-x86_64 "${accel[@]}" -smp 2 -m "$MEM" -nographic -no-reboot \
  -kernel "$kernel" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1" </dev/null \
  | tr -d '\r' | grep -E '(guest:|^\{|^bench exit)'
