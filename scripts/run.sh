#!/usr/bin/env bash
# The main job: installs what is needed (scripts/setup.sh), builds rkube, starts a single-node
# cluster (`rkube server`: the embedded store, the API server over HTTPS, the scheduler, the
# controllers and the local node's kubelet with its own containerd) on 127.0.0.1, loads a
# busybox image built from Debian's busybox-static (no registry is reachable), applies the
# sample app (examples/sample-app.yaml) with kubectl, waits until its pods run, shows it, and
# keeps serving until Ctrl-C. Settings: RKUBE_DATA_DIR (default /var/lib/rkube), RKUBE_PORT
# (default 6443). The Service gets no ClusterIP until service networking lands.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/rkube-target}"
cargo build --release --locked -p rkube
BIN="$CARGO_TARGET_DIR/release/rkube"
DATA="${RKUBE_DATA_DIR:-/var/lib/rkube}"
PORT="${RKUBE_PORT:-6443}"
KUBECONFIG_FILE="$DATA/kubeconfig.yaml"

rm -f "$KUBECONFIG_FILE"
"$BIN" server --data-dir "$DATA" --https-listen-port "$PORT" --bind-address 127.0.0.1 \
  --write-kubeconfig "$KUBECONFIG_FILE" &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT INT TERM

# The kubeconfig appears once the API answers.
for _ in $(seq 1 300); do
  [ -s "$KUBECONFIG_FILE" ] && break
  kill -0 "$PID" 2>/dev/null || { echo "run.sh: rkube server exited" >&2; exit 1; }
  sleep 0.1
done
[ -s "$KUBECONFIG_FILE" ] || { echo "run.sh: rkube server did not become ready" >&2; exit 1; }

# The sample's image, imported into the node's containerd.
IMAGE_TAR="$(mktemp --suffix .tar)"
bash scripts/busybox-image.sh "$IMAGE_TAR" 1.36
for _ in $(seq 1 100); do
  "$BIN" image import --data-dir "$DATA" --base-name docker.io/library/busybox "$IMAGE_TAR" && break
  sleep 0.2
done
rm -f "$IMAGE_TAR"

if command -v kubectl >/dev/null; then
  export KUBECONFIG="$KUBECONFIG_FILE"
  kubectl wait --for=condition=Ready node --all --timeout=60s
  kubectl apply -f examples/sample-app.yaml
  kubectl wait -n sample --for=condition=Available deployment/web --timeout=120s
  kubectl get all,configmaps -n sample -o wide
else
  echo "run.sh: kubectl not found; the API is at https://127.0.0.1:$PORT (kubeconfig $KUBECONFIG_FILE)"
fi
echo "run.sh: rkube server is running (KUBECONFIG=$KUBECONFIG_FILE); Ctrl-C stops it"
wait "$PID"
