#!/usr/bin/env bash
# Builds the local cluster's components from Go module source: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl at the versions
# of .ci/versions.sh, and the pause (sandbox) image's binary from kubernetes' pause.c.
# Nothing of this is downloadable here as a binary. Results are cached under
# ~/.cache/item-api/cluster/<version>, so a warm run only checks the files are there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/item-api"
OUT="$CACHE_DIR/cluster/kubernetes-$KUBERNETES_VERSION"
ETCD_OUT="$CACHE_DIR/cluster/etcd-$ETCD_VERSION"
COREDNS_OUT="$CACHE_DIR/cluster/coredns-$COREDNS_VERSION"
SKAFFOLD_OUT="$CACHE_DIR/cluster/skaffold-$SKAFFOLD_VERSION"
REGISTRY_OUT="$CACHE_DIR/cluster/registry-$REGISTRY_VERSION"
export GOFLAGS="-buildvcs=false"

command -v go >/dev/null || { echo "cluster-build: go is required" >&2; exit 1; }

build_etcd() {
  [[ -x "$ETCD_OUT/etcd" ]] && return 0
  echo "cluster-build: building etcd $ETCD_VERSION" >&2
  local src="$CACHE_DIR/cluster/.src-etcd-$ETCD_VERSION"
  rm -rf "$src" && mkdir -p "$src"
  cat >"$src/go.mod" <<MOD
module local/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$src/main.go" <<'GO'
// etcd's own main, built from its published server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 && \
    go build -trimpath -ldflags "-s -w" -o "$src/etcd" .)
  mkdir -p "$ETCD_OUT"
  mv "$src/etcd" "$ETCD_OUT/etcd"
  rm -rf "$src"
}

# A command installed from its module as published (no replace directives) into its cache dir.
go_install() { # out-dir package@version [ldflags]
  local out=$1 pkg=$2 ldflags=${3:-} name
  name=$(basename "${pkg%@*}")
  [[ -x "$out/$name" ]] && return 0
  echo "cluster-build: building $pkg" >&2
  local tmp="$CACHE_DIR/cluster/.build-$name"
  rm -rf "$tmp" && mkdir -p "$tmp"
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w $ldflags" "$pkg"
  mkdir -p "$out"
  mv "$tmp/$name" "$out/$name"
  rm -rf "$tmp"
}

build_coredns() {
  go_install "$COREDNS_OUT" "github.com/coredns/coredns@$COREDNS_VERSION"
}

# skaffold's go.mod pins a few dependencies with replace directives, which `go install` refuses;
# a module of our own requires skaffold and repeats them (read from skaffold's own go.mod, so a
# version bump carries its pins), then builds its command with the release's tags and stamps.
build_skaffold() {
  [[ -x "$SKAFFOLD_OUT/skaffold" ]] && return 0
  echo "cluster-build: building skaffold $SKAFFOLD_VERSION" >&2
  local src="$CACHE_DIR/cluster/.src-skaffold-$SKAFFOLD_VERSION" skaffold_dir
  rm -rf "$src" && mkdir -p "$src"
  skaffold_dir=$(go mod download -json "github.com/GoogleContainerTools/skaffold/v2@$SKAFFOLD_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  {
    echo "module local/skaffold"
    echo
    echo "go 1.24"
    echo
    echo "require github.com/GoogleContainerTools/skaffold/v2 $SKAFFOLD_VERSION"
    echo
    grep -E '^(replace|exclude) ' "$skaffold_dir/go.mod"
  } >"$src/go.mod"
  cat >"$src/tools.go" <<'GO'
//go:build tools

// Only here so that `go mod tidy` keeps skaffold's command and its dependencies.
package tools

import _ "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
GO
  local pkg=github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 && \
    go build -tags "tools osusergo netgo static_build release" -trimpath \
      -ldflags "-s -w -X $pkg.version=$SKAFFOLD_VERSION -X $pkg.buildDate=1970-01-01T00:00:00Z" \
      -o "$src/skaffold" github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold)
  mkdir -p "$SKAFFOLD_OUT"
  mv "$src/skaffold" "$SKAFFOLD_OUT/skaffold"
  rm -rf "$src"
}

# The OCI registry skaffold pushes to and containerd pulls from, as on a cluster with a registry.
build_registry() {
  go_install "$REGISTRY_OUT" "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION" \
    "-X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
}

build_kubernetes() {
  local commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
  local missing=0 c
  for c in "${commands[@]}"; do [[ -x "$OUT/$c" ]] || missing=1; done
  [[ $missing = 0 ]] && return 0
  echo "cluster-build: building kubernetes $KUBERNETES_VERSION (${commands[*]})" >&2
  local src="$CACHE_DIR/cluster/.src-kubernetes-$KUBERNETES_VERSION"
  rm -rf "$src" && mkdir -p "$src"
  local k8s_dir staging_version
  k8s_dir=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  # kubernetes' go.mod points its staging modules at ./staging; the same code is published as
  # k8s.io/<name> v0.<minor>.<patch>. Two sample modules are not published and nothing needs them.
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  {
    echo "module local/kubernetes"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$k8s_dir/go.mod" |
      grep -vE '^k8s.io/sample-(cli-plugin|controller)$' |
      while read -r m; do echo "replace $m => $m $staging_version"; done
  } >"$src/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for c in "${commands[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ")"
  } >"$src/tools.go"
  (cd "$src" && GOFLAGS=-mod=mod go mod tidy)
  # Without the version stamps the server reports v0.0.0-master and helm refuses a chart
  # whose kubeVersion names a release.
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  local bin="$src/bin" pkgs=()
  for c in "${commands[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  mkdir -p "$bin"
  (cd "$src" && go build -tags tools -trimpath -ldflags "$ldflags" -o "$bin/" "${pkgs[@]}")
  # The sandbox image's only binary, as kubernetes builds it: static, from build/pause.
  gcc -Os -Wall -Werror -static -DVERSION="v3.10-item-api" -o "$bin/pause" "$k8s_dir/build/pause/linux/pause.c"
  strip "$bin/pause"
  mkdir -p "$OUT"
  for c in "${commands[@]}" pause; do mv "$bin/$c" "$OUT/$c"; done
  rm -rf "$src"
}

build_etcd &
etcd_pid=$!
build_kubernetes
wait "$etcd_pid"
build_coredns &
coredns_pid=$!
build_registry
wait "$coredns_pid"
build_skaffold
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl pause; do
  [[ -x "$OUT/$c" ]] || { echo "cluster-build: $c missing" >&2; exit 1; }
done
echo "kubernetes $("$OUT/kubectl" version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)",/\1/p') in $OUT"
echo "etcd $("$ETCD_OUT/etcd" --version | head -1)"
echo "coredns $("$COREDNS_OUT/coredns" -version | head -1)"
echo "skaffold $("$SKAFFOLD_OUT/skaffold" version)"
echo "registry $("$REGISTRY_OUT/registry" --version)"
