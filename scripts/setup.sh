#!/usr/bin/env bash
# Installs every system package rkube needs so far, with apt-get. Idempotent: a package that is
# already installed is left alone, and `apt-get update` runs only when something is missing.
set -euo pipefail

PACKAGES=(
  etcd-server   # the real etcd, for the etcd store backend, its tests and the store benchmark
  etcd-client   # etcdctl, used by people debugging an etcd-backed cluster
  protobuf-compiler  # protoc, which the etcd-client crate (and later the CRI protos) build with
  libprotobuf-dev    # google/protobuf/*.proto, which those protos import
  containerd    # the container runtime the kubelet drives over CRI (rkube supervises its own instance)
  runc          # containerd's OCI runtime
  containernetworking-plugins  # CNI plugins in /usr/lib/cni: bridge, host-local, loopback, portmap
  iptables      # portmap's hostPort rules, and the proxy's iptables mode
  nftables      # the proxy's nftables mode
  busybox-static  # the userland of the test images, which are built locally (no registry is reachable)
  umoci         # builds OCI-layout image tarballs from a root filesystem
  docker-registry  # a local OCI registry on loopback, for the image-pull tests
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs packages with apt-get)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian's etcd-server package starts a system etcd on 127.0.0.1:2379. rkube's tests and
  # benchmarks start their own etcd processes on free ports, so the system one is not needed;
  # stop it so that it holds no ports and does no disk I/O during benchmarks.
  # The same holds for the system containerd and registry: rkube supervises its own containerd
  # (own root, state and socket) and the tests start registries on free loopback ports.
  if command -v systemctl >/dev/null 2>&1; then
    for unit in etcd containerd docker-registry; do
      if systemctl is-active --quiet "$unit" 2>/dev/null; then
        systemctl stop "$unit" || true
        systemctl disable "$unit" || true
      fi
    done
  fi
else
  echo "setup.sh: all system packages present"
fi

command -v etcd >/dev/null || { echo "setup.sh: etcd not on PATH after install" >&2; exit 1; }
# The Rust toolchain comes with the machine image (rustup); Debian's own cargo is too old.
command -v cargo >/dev/null || { echo "setup.sh: cargo not found; install a Rust toolchain (1.85 or newer) with rustup" >&2; exit 1; }

# The Python `kubernetes` client, for the client-compatibility test, in a venv of its own.
VENV="${RKUBE_VENV:-/var/cache/rkube-venv}"
PY_CLIENT="kubernetes==33.1.0"
if ! "$VENV/bin/python" -c 'import kubernetes, sys; sys.exit(kubernetes.__version__ != "33.1.0")' 2>/dev/null; then
  echo "setup.sh: installing the Python client ($PY_CLIENT) into $VENV"
  command -v python3 >/dev/null || { echo "setup.sh: python3 not found" >&2; exit 1; }
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$PY_CLIENT"
fi
