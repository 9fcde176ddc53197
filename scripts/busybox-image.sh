#!/usr/bin/env bash
# Builds an OCI-layout image archive of Debian's busybox-static (a symlink per applet, a minimal
# /etc) with umoci, for machines that reach no registry: `scripts/busybox-image.sh OUT.tar TAG`
# writes OUT.tar with the image tagged TAG; `rkube image import --base-name
# docker.io/library/busybox OUT.tar` then makes it `busybox:TAG` for pods.
set -euo pipefail
OUT="$1"
TAG="${2:-1.36}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
umoci init --layout "$WORK/layout"
umoci new --image "$WORK/layout:$TAG"
umoci unpack --rootless --image "$WORK/layout:$TAG" "$WORK/bundle" >/dev/null
ROOTFS="$WORK/bundle/rootfs"
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,var/www}
chmod 1777 "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$ROOTFS/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOTFS/etc/group"
echo "rkube sample: busybox httpd" >"$ROOTFS/var/www/index.html"
umoci repack --image "$WORK/layout:$TAG" "$WORK/bundle" >/dev/null
umoci config --image "$WORK/layout:$TAG" --config.cmd sh \
  --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin >/dev/null
tar -C "$WORK/layout" -cf "$OUT" .
