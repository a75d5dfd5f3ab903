#!/bin/busybox sh
# cmacheck kreplay: /init of the guest. Mounts the pseudo file systems, loads
# our module, runs the driver on /kreplay/script (added per run), then powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
insmod /lib/cmacheck_cma.ko
/bin/krdrive /kreplay/script
reboot -f
