#!/usr/bin/env bash
# Proves the archives .ci/image-build.sh writes are what a node's containerd accepts: a throwaway
# containerd (own root, state and socket in a temporary directory, CRI plugin off, so nothing of
# the machine's own runtime is touched) imports each into the k8s.io namespace, the one the
# kubelet reads, and must list it under its tag. Removed afterwards, whatever happened.
set -euo pipefail

IMAGES_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/item-api/images"
command -v containerd >/dev/null && command -v ctr >/dev/null || { echo "image-import-check: containerd and ctr are required" >&2; exit 1; }

work=$(mktemp -d)
containerd_pid=
cleanup() {
  if [[ -n "$containerd_pid" ]]; then
    kill "$containerd_pid" 2>/dev/null || true
    wait "$containerd_pid" 2>/dev/null || true
  fi
  # Snapshot mounts, if an unpack was interrupted.
  grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd-ttrpc.sock"
TOML
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
ctr=(ctr --address "$work/containerd.sock" --namespace k8s.io)
for _ in $(seq 100); do
  "${ctr[@]}" version >/dev/null 2>&1 && break
  kill -0 "$containerd_pid" 2>/dev/null || { cat "$work/containerd.log" >&2; exit 1; }
  sleep 0.1
done

for pair in item-api-dev.tar=localhost/item-api:dev item-api-dev-sync.tar=localhost/item-api:dev-sync; do
  archive="$IMAGES_DIR/${pair%%=*}" ref=${pair#*=}
  [[ -s "$archive" ]] || { echo "image-import-check: $archive missing: run .ci/image-build.sh" >&2; exit 1; }
  "${ctr[@]}" images import "$archive" >/dev/null
  if ! "${ctr[@]}" images ls --quiet | grep -qx "$ref"; then
    echo "image-import-check: $ref not listed after importing $archive" >&2
    "${ctr[@]}" images ls >&2
    exit 1
  fi
  echo "containerd $(containerd --version | awk '{print $3}') imports $archive as $ref"
done
