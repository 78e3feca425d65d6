#!/bin/sh
# Stage 2 of the BLE VM (see builder.py), PID 1 on the host's root shared read-only over 9p.
# Parameters come from the kernel command line as environment variables gaitsym_*.
BB="$gaitsym_bluez/bin/busybox"
W="$gaitsym_work"
PY="$gaitsym_python"
off() { sync; "$BB" poweroff -f; }

"$BB" mount -t proc proc /proc
"$BB" mount -t sysfs sys /sys
"$BB" mount -t devtmpfs dev /dev
"$BB" mount -t tmpfs tmpfs /run
"$BB" cp "$BB" /run/busybox && BB=/run/busybox  # the checkout may be hidden for a moment below
"$BB" mkdir -p /run/host && "$BB" mount -o bind / /run/host
for d in /tmp /var/lib /var/log; do "$BB" mount -t tmpfs tmpfs "$d"; done
# A checkout (or its VM cache) inside one of those folders would be hidden by the tmpfs: bind it back from the
# host's root, so the tests run from any folder, /tmp included.
for p in "$gaitsym_repo" "$gaitsym_bluez"; do
  case "$p" in /tmp/*|/var/lib/*|/var/log/*)
    "$BB" mkdir -p "$p" && "$BB" mount -o bind "/run/host$p" "$p" || { echo "gaitsym-vm: cannot bind $p"; off; } ;;
  esac
done
"$BB" mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 work "$W" || { echo "gaitsym-vm: no work share"; off; }
exec >"$W/stage2.log" 2>&1
echo "stage2 at $(cut -d' ' -f1 /proc/uptime) s"
"$BB" cut -d' ' -f1 /proc/uptime >"$W/boot_uptime_s"
"$BB" mkdir -p /run/dbus /var/lib/bluetooth
"$BB" hostname gaitsym-vm
export PATH="/usr/sbin:/usr/bin:/sbin:/bin" HOME=/tmp PYTHONDONTWRITEBYTECODE=1
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket

"$BB" ip link set lo up || "$BB" ifconfig lo 127.0.0.1 up  # Mosquitto and the worker on 127.0.0.1
dbus-daemon --config-file="$gaitsym_repo/testing/ble_vm/system-bus.conf" --fork --nopidfile || { echo "no dbus"; off; }
BTMON=
if [ "$gaitsym_btmon" = 1 ]; then "$gaitsym_bluez/usr/bin/btmon" -w /tmp/hci.btsnoop >/dev/null 2>&1 & BTMON=$!; fi
"$gaitsym_bluez/usr/libexec/bluetooth/bluetoothd" -n >"$W/bluetoothd.log" 2>&1 &

cd "$gaitsym_repo" || off
# the kit is the controller too: the kernel gives up on an HCI command unanswered for 2 s
nice -n -10 "$PY" -m testing.ble_peripheral.bumble_kit --vhci /dev/vhci --control /run/kit.sock \
  --small-mtu-sensor "$gaitsym_small_mtu" --motion sine >"$W/kit.log" 2>&1 &
KIT=$!
# The gateway (pairing, BleTransport, core, outbox, paho) + Mosquitto + an acknowledging worker. Started at once:
# its imports (slow over 9p under emulation) overlap the kit's; it waits for the kit's control socket.
"$PY" "$gaitsym_repo/testing/ble_vm/central.py" --kit /run/kit.sock --out "$W/result.json" \
  --stream-s "$gaitsym_stream_s" --small-mtu "$gaitsym_small_mtu" --samples-per-packet "$gaitsym_spp" \
  --boot-uptime-file "$W/boot_uptime_s" >"$W/central.log" 2>&1
echo "central exit $? at $(cut -d' ' -f1 /proc/uptime) s"
kill $KIT 2>/dev/null
if [ -n "$BTMON" ]; then
  kill -INT $BTMON; "$BB" sleep 1; cp /tmp/hci.btsnoop "$W/"
  "$gaitsym_bluez/usr/bin/btmon" -T -r /tmp/hci.btsnoop >"$W/btmon.txt" 2>&1
fi
"$BB" dmesg >"$W/dmesg.log"
off
