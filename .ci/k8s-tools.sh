#!/usr/bin/env bash
# Installs the pinned tools the chart checks need (helm 3, helm 4, kubectl-validate)
# from the Go module proxy, and extracts from module sources the JSON schema of
# skaffold.yaml's apiVersion, the OpenAPI schemas of each Kubernetes release the chart is
# checked against, and the Gateway API CRDs. Everything lands in a cache dir keyed by
# version, so a second run only checks that the files are there.
set -euo pipefail
# shellcheck source=versions.sh
source "$(dirname "$0")/versions.sh"

# kubectl-validate embeds OpenAPI schemas only up to Kubernetes 1.30 and would fetch
# newer ones from the network; the published specs (api/openapi-spec/v3 in the
# kubernetes module source) of K8S_OPENAPI_RELEASES (versions.sh) are extracted instead.

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/item-api"
BIN_DIR="$CACHE_DIR/go-bin"
SCHEMA_DIR="$CACHE_DIR/schemas"
ENV_FILE="$CACHE_DIR/k8s-tools.env"
mkdir -p "$BIN_DIR" "$SCHEMA_DIR"

command -v go >/dev/null || { echo "k8s-tools: go is required" >&2; exit 1; }
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
# Stamps the version as helm's release build does; without it `helm version` reports
# only the minor line. Binaries are named by version so a pin change rebuilds.
install_tool() { # name version package ldflags
  local name=$1 version=$2 pkg=$3 ldflags=${4:-}
  local target="$BIN_DIR/$name-$version"
  if [[ -x "$target" ]]; then return 0; fi
  local tmp
  tmp=$(mktemp -d "$BIN_DIR/.build-$name.XXXXXX")
  echo "k8s-tools: building $pkg@$version" >&2
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w $ldflags" "$pkg@$version"
  mv "$tmp/$(basename "$pkg")" "$target.partial"
  mv "$target.partial" "$target"
  rm -rf "$tmp"
}

# Two at a time: the machine has 2 cores and each build is CPU-bound.
install_tool helm3 "$HELM3_VERSION" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION" &
pid_helm3=$!
install_tool helm4 "$HELM4_VERSION" helm.sh/helm/v4/cmd/helm \
  "-X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION" &
pid_helm4=$!
wait "$pid_helm3"
wait "$pid_helm4"
install_tool kubectl-validate "$KUBECTL_VALIDATE_VERSION" sigs.k8s.io/kubectl-validate

module_dir() { # module@version -> extracted source dir in the module cache
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

skaffold_schema="$SCHEMA_DIR/skaffold-$SKAFFOLD_SCHEMA_VERSION.json"
if [[ ! -s "$skaffold_schema" ]]; then
  dir=$(module_dir "github.com/GoogleContainerTools/skaffold/v2@$SKAFFOLD_VERSION")
  cp "$dir/docs-v2/content/en/schemas/$SKAFFOLD_SCHEMA_VERSION.json" "$skaffold_schema.partial"
  mv "$skaffold_schema.partial" "$skaffold_schema"
fi

# Layout kubectl-validate's --local-schemas expects: api/v1.json, apis/<group>/<version>.json.
for release in $K8S_OPENAPI_RELEASES; do
  minor=${release#v}
  minor=${minor%.*}
  out="$SCHEMA_DIR/k8s-openapi/$minor"
  if [[ -f "$out/.release-$release" ]]; then continue; fi
  echo "k8s-tools: extracting OpenAPI schemas of kubernetes $release" >&2
  src="$(module_dir "k8s.io/kubernetes@$release")/api/openapi-spec/v3"
  tmp=$(mktemp -d "$SCHEMA_DIR/.k8s-$minor.XXXXXX")
  for f in "$src"/*_openapi.json; do
    base=$(basename "$f" _openapi.json)
    # Only group-version documents; the group and root listings are not schemas.
    [[ $base =~ ^api__[^_]+$ || $base =~ ^apis__[^_]+__[^_]+$ ]] || continue
    rel=${base//__//}
    mkdir -p "$tmp/$(dirname "$rel")"
    cp "$f" "$tmp/$rel.json"
  done
  touch "$tmp/.release-$release"
  rm -rf "$out"
  mkdir -p "$(dirname "$out")"
  mv "$tmp" "$out"
done

# The standard-channel HTTPRoute CRD, with its CEL validation rules, for --local-crds.
# Only the CRD: the directory also holds a ValidatingAdmissionPolicy, which is no CRD.
gateway_crds="$SCHEMA_DIR/gateway-api/$GATEWAY_API_VERSION"
if [[ ! -f "$gateway_crds/.release" ]]; then
  echo "k8s-tools: extracting Gateway API $GATEWAY_API_VERSION CRDs" >&2
  dir=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  tmp=$(mktemp -d "$SCHEMA_DIR/.gateway-api.XXXXXX")
  cp "$dir/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" "$tmp/"
  touch "$tmp/.release"
  rm -rf "$gateway_crds"
  mkdir -p "$(dirname "$gateway_crds")"
  mv "$tmp" "$gateway_crds"
fi

cat >"$ENV_FILE.partial" <<ENV
HELM3=$BIN_DIR/helm3-$HELM3_VERSION
HELM4=$BIN_DIR/helm4-$HELM4_VERSION
KUBECTL_VALIDATE=$BIN_DIR/kubectl-validate-$KUBECTL_VALIDATE_VERSION
SKAFFOLD_SCHEMA=$skaffold_schema
SKAFFOLD_SCHEMA_VERSION=$SKAFFOLD_SCHEMA_VERSION
K8S_OPENAPI_DIR=$SCHEMA_DIR/k8s-openapi
GATEWAY_API_CRDS=$gateway_crds
GATEWAY_API_VERSION=$GATEWAY_API_VERSION
ENV
mv "$ENV_FILE.partial" "$ENV_FILE"

echo "helm3 $("$BIN_DIR/helm3-$HELM3_VERSION" version --short)"
echo "helm4 $("$BIN_DIR/helm4-$HELM4_VERSION" version --short)"
echo "kubectl-validate $KUBECTL_VALIDATE_VERSION"
echo "kubernetes OpenAPI: $K8S_OPENAPI_RELEASES extracted"
echo "gateway-api CRDs: $GATEWAY_API_VERSION standard channel"
echo "skaffold schema skaffold/$SKAFFOLD_SCHEMA_VERSION (from skaffold $SKAFFOLD_VERSION)"
echo "tool paths: $ENV_FILE"
