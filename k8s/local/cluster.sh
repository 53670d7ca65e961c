#!/usr/bin/env bash
# A one-node Kubernetes cluster made of the real components, on this machine only:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler (control plane, loopback),
#   containerd + runc + the CNI bridge plugin, kubelet, kube-proxy (iptables mode),
#   CoreDNS (cluster DNS), an image registry on localhost:$REGISTRY_PORT that containerd pulls
#   from, and PostgreSQL 15 for the item API, all as host processes.
# Pods live in network namespaces on the bridge $BRIDGE ($POD_CIDR); forwarding out of the
# bridge is dropped, so no pod traffic leaves the machine. ClusterIPs ($SERVICE_CIDR) are
# routed to the bridge and translated by the cluster's own kube-proxy.
#
#   cluster.sh up           build nothing, start everything, wait until the node is Ready
#   cluster.sh load FILE    import an image archive (docker-archive or OCI) into containerd
#   cluster.sh env          print the KUBECONFIG and paths, for `eval`
#   cluster.sh down         stop everything and restore the machine exactly (checked)
#
# Binaries come from .ci/cluster-build.sh (versions in .ci/versions.sh). Must run as root:
# the kubelet, containerd and kube-proxy manage namespaces, mounts, cgroups and iptables.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=../../.ci/versions.sh
source "$repo/.ci/versions.sh"

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/item-api"
K8S_BIN="$CACHE_DIR/cluster/kubernetes-$KUBERNETES_VERSION"
ETCD_BIN="$CACHE_DIR/cluster/etcd-$ETCD_VERSION/etcd"
COREDNS_BIN="$CACHE_DIR/cluster/coredns-$COREDNS_VERSION/coredns"
REGISTRY_BIN="$CACHE_DIR/cluster/registry-$REGISTRY_VERSION/registry"
SKAFFOLD_BIN="$CACHE_DIR/cluster/skaffold-$SKAFFOLD_VERSION/skaffold"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

D="${ITEM_API_CLUSTER_DIR:-/tmp/item-api-cluster}"
NODE=item-api-node
BRIDGE=itemapi0
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
API_PORT=16443
ETCD_CLIENT_PORT=23790
ETCD_PEER_PORT=23800
# The port kind's documented local registry uses, so a skaffold default-repo reads the same.
REGISTRY_PORT=5001
SANDBOX_IMAGE=localhost/pause:item-api
# Everything the kubelet and kube-proxy change outside their own directories, restored by down.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory kernel.panic
  kernel.panic_on_oops net.ipv4.conf.all.route_localnet)
OUTSIDE_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/netns /var/run/netns /etc/cni)

log() { printf '[cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# grep that finds nothing is not an error where a clean machine has nothing to find.
keep() { grep "$@" || true; }
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$D/pki/admin.kubeconfig" "$@"; }

# --- certificates ----------------------------------------------------------------------------

# One CA signs every identity; each component authenticates as itself (RBAC and the Node
# authorizer see real users), and the API server checks the kubelet's serving certificate.
cert() { # name subject [san]
  local name=$1 subject=$2 san=${3:-}
  openssl genrsa -out "$D/pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$D/pki/$name.key" -subj "$subject" -out "$D/pki/$name.csr" 2>/dev/null
  local ext="$D/pki/$name.ext"
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $san ]]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san"
    else echo "extendedKeyUsage=clientAuth"; fi; } >"$ext"
  openssl x509 -req -in "$D/pki/$name.csr" -CA "$D/pki/${4:-ca}.crt" -CAkey "$D/pki/${4:-ca}.key" \
    -CAcreateserial -days 2 -extfile "$ext" -out "$D/pki/$name.crt" 2>/dev/null
  rm -f "$D/pki/$name.csr" "$ext"
}

kubeconfig() { # name
  cat >"$D/pki/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster: { server: "https://127.0.0.1:$API_PORT", certificate-authority: "$D/pki/ca.crt" }
users:
  - name: $1
    user: { client-certificate: "$D/pki/$1.crt", client-key: "$D/pki/$1.key" }
contexts:
  - name: item-api-local
    context: { cluster: local, user: $1 }
current-context: item-api-local
EOF
}

make_pki() {
  mkdir -p "$D/pki"
  for ca in ca front-proxy-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/pki/$ca.key" -out "$D/pki/$ca.crt" \
      -days 2 -subj "/CN=item-api-local-$ca" 2>/dev/null
  done
  cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert kubelet-serving "/CN=system:node:$NODE/O=system:nodes" "IP:$NODE_IP,DNS:$NODE"
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"
  cert front-proxy-client "/CN=front-proxy-client" "" front-proxy-ca
  cert admin "/CN=item-api-admin/O=system:masters"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kubelet "/CN=system:node:$NODE/O=system:nodes"
  cert kube-proxy "/CN=system:kube-proxy"
  cert coredns "/CN=item-api:coredns"
  openssl genrsa -out "$D/pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$D/pki/sa.key" -pubout -out "$D/pki/sa.pub" 2>/dev/null
  for user in admin controller-manager scheduler kubelet kube-proxy coredns; do kubeconfig "$user"; done
  chmod 600 "$D"/pki/*.key
}

# --- processes -------------------------------------------------------------------------------

start() { # name command...
  local name=$1; shift
  log "starting $name"
  setsid "$@" >"$D/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$D/pids/$name"
}

wait_for() { # what seconds command...
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what not ready after ${seconds}s (logs in $D/logs)"
    sleep 0.25
  done
}

start_control_plane() {
  start etcd "$ETCD_BIN" --name item-api --data-dir "$D/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "item-api=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" --log-level warn
  wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
  # On loopback there is no address to publish for the kubernetes Service: reconciler off.
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" --bind-address 127.0.0.1 --secure-port "$API_PORT" \
    --endpoint-reconciler-type none --service-cluster-ip-range "$SERVICE_CIDR" \
    --client-ca-file "$D/pki/ca.crt" --tls-cert-file "$D/pki/apiserver.crt" --tls-private-key-file "$D/pki/apiserver.key" \
    --service-account-key-file "$D/pki/sa.pub" --service-account-signing-key-file "$D/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$D/pki/apiserver-kubelet-client.crt" --kubelet-client-key "$D/pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$D/pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --requestheader-client-ca-file "$D/pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$D/pki/front-proxy-client.crt" --proxy-client-key-file "$D/pki/front-proxy-client.key" \
    --profiling=false
  wait_for kube-apiserver 90 kubectl get --raw /readyz
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$D/pki/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$D/pki/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$D/pki/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$D/pki/sa.key" --root-ca-file "$D/pki/ca.crt" \
    --cluster-signing-cert-file "$D/pki/ca.crt" --cluster-signing-key-file "$D/pki/ca.key" \
    --allocate-node-cidrs=false --profiling=false
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$D/pki/scheduler.kubeconfig" \
    --authentication-kubeconfig "$D/pki/scheduler.kubeconfig" \
    --authorization-kubeconfig "$D/pki/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false
  # The API server calls the kubelet as kube-apiserver-kubelet-client (logs, exec, port-forward),
  # and CoreDNS reads Services and EndpointSlices as itself.
  kubectl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: item-api-local:apiserver-kubelet }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: item-api-local:coredns }
rules:
  - { apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch] }
  - { apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: item-api-local:coredns }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: item-api-local:coredns }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: item-api:coredns }]
EOF
}

# --- node: network, containerd, kubelet, kube-proxy ---------------------------------------------

setup_network() {
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Host -> ClusterIP: the route gives the packet a way out so kube-proxy's OUTPUT DNAT sees it;
  # without a rule it dies on the bridge instead of leaving through the default route.
  ip route add "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  # Pods talk to each other, to ClusterIPs and to the host; nothing they send is forwarded out.
  iptables -I FORWARD 1 -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment item-api-local -j DROP
  mkdir -p "$D/cni/net.d" "$D/cni/ipam"
  cat >"$D/cni/net.d/10-item-api.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "item-api",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": { "type": "host-local", "dataDir": "$D/cni/ipam",
              "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP" }]],
              "routes": [{ "dst": "0.0.0.0/0" }] }
  }]
}
EOF
}

start_containerd() {
  mkdir -p "$D/containerd"
  cat >"$D/containerd/config.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$D/containerd/containerd.sock"
[ttrpc]
  address = "$D/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$D/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: a pod's oom_score_adj below ours would fail every sandbox.
  restrict_oom_score_adj = true
  # Pod network namespaces inside the cluster directory, not in /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$D/containerd/certs.d"
EOF
  start containerd containerd --config "$D/containerd/config.toml"
  wait_for containerd 30 ctr_ version
  import_pause_image
}

ctr_() { ctr --address "$D/containerd/containerd.sock" --namespace k8s.io "$@"; }

# The sandbox image cannot be pulled: an OCI archive of kubernetes' own pause binary.
import_pause_image() {
  local dir="$D/pause-image" layer config manifest
  mkdir -p "$dir/rootfs" "$dir/oci/blobs/sha256"
  cp "$K8S_BIN/pause" "$dir/rootfs/pause"
  tar -C "$dir/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$dir/layer.tar" pause
  layer=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  mv "$dir/layer.tar" "$dir/oci/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$layer" >"$dir/config.json"
  config=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
    "$config" "$(stat -c %s "$dir/config.json")" "$layer" "$(stat -c %s "$dir/oci/blobs/sha256/$layer")" >"$dir/manifest.json"
  manifest=$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)
  mv "$dir/config.json" "$dir/oci/blobs/sha256/$config"
  mv "$dir/manifest.json" "$dir/oci/blobs/sha256/$manifest"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"item-api"}}]}' \
    "$manifest" "$(stat -c %s "$dir/oci/blobs/sha256/$manifest")" "$SANDBOX_IMAGE" >"$dir/oci/index.json"
  tar -C "$dir/oci" -cf "$dir/pause.tar" .
  ctr_ images import "$dir/pause.tar" >/dev/null
  rm -rf "$dir"
}

start_kubelet() {
  mkdir -p "$D/kubelet" "$D/pod-logs"
  cat >"$D/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (hybrid): kubelet >= 1.35 refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$D/containerd/containerd.sock
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $D/pki/kubelet-serving.crt
tlsPrivateKeyFile: $D/pki/kubelet-serving.key
# Only the API server (client certificate) may call the kubelet; nothing anonymous.
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $D/pki/ca.crt }
authorization: { mode: Webhook }
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: ""
podLogsDir: $D/pod-logs
oomScoreAdj: 0
maxPods: 40
serializeImagePulls: false
evictionHard: { memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2% }
imageGCHighThresholdPercent: 100
EOF
  start kubelet "$K8S_BIN/kubelet" --config "$D/kubelet/config.yaml" --kubeconfig "$D/pki/kubelet.kubeconfig" \
    --root-dir "$D/kubelet" --cert-dir "$D/kubelet/pki" --hostname-override "$NODE" --node-ip "$NODE_IP" --v 1
}

start_kube_proxy() {
  cat >"$D/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $D/pki/kube-proxy.kubeconfig }
hostnameOverride: $NODE
mode: iptables
clusterCIDR: $POD_CIDR
oomScoreAdj: 0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
# Leave the machine's conntrack table sizes and timeouts as they are.
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
# The defaults, spelled out: kube-proxy applies endpoint changes at most once a second.
iptables: { minSyncPeriod: 1s, syncPeriod: 30s }
EOF
  start kube-proxy "$K8S_BIN/kube-proxy" --config "$D/kube-proxy.yaml"
}

start_coredns() {
  cat >"$D/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    kubernetes cluster.local in-addr.arpa {
        kubeconfig $D/pki/coredns.kubeconfig item-api-local
        pods insecure
        fallthrough in-addr.arpa
    }
    cache 5
}
EOF
  start coredns "$COREDNS_BIN" -conf "$D/Corefile"
}

# The cluster's image registry, on loopback: skaffold (or podman/docker push) puts images there
# and the kubelet pulls them through containerd, as on a cluster with a registry. Plain HTTP is
# declared for this one host in containerd's hosts.toml; nothing else is mirrored.
start_registry() {
  local hosts="$D/containerd/certs.d/localhost:$REGISTRY_PORT"
  mkdir -p "$D/registry/data" "$hosts"
  cat >"$D/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $D/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
  cat >"$hosts/hosts.toml" <<EOF
server = "http://localhost:$REGISTRY_PORT"

[host."http://localhost:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
  # The registry would otherwise export traces to an OTLP collector by default.
  start registry env OTEL_TRACES_EXPORTER=none "$REGISTRY_BIN" serve "$D/registry/config.yml"
  wait_for registry 30 curl -sf "http://127.0.0.1:$REGISTRY_PORT/v2/"
}

# PostgreSQL for the pods, on the node's bridge address; the Service `postgres` (selector-less,
# with its EndpointSlice) makes k8s/dev-postgres-secret.yaml's DATABASE_URL resolve to it unchanged.
start_postgres() {
  mkdir -p "$D/postgres"
  chown postgres: "$D/postgres"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$D/postgres/data" -U postgres -A trust -E UTF8 >/dev/null
  cat >>"$D/postgres/data/postgresql.conf" <<EOF
listen_addresses = '$NODE_IP'
unix_socket_directories = '$D/postgres'
max_connections = 200
fsync = off
EOF
  cat >"$D/postgres/data/pg_hba.conf" <<EOF
local all all trust
host all all $POD_CIDR scram-sha-256
EOF
  start postgres runuser -u postgres -- "$PG_BIN/postgres" -D "$D/postgres/data"
  wait_for postgres 30 runuser -u postgres -- "$PG_BIN/pg_isready" -h "$D/postgres" -q
  runuser -u postgres -- "$PG_BIN/psql" -h "$D/postgres" -qc \
    "CREATE ROLE item_api LOGIN CREATEDB PASSWORD 'item_api_dev'" -c "CREATE DATABASE item_api OWNER item_api" >/dev/null
}

# --- snapshot of the machine, so down can prove it restored everything ---------------------------

machine_state() {
  echo "## links"; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "## addresses"; ip -o addr show | awk '{print $2, $4}' | sort
  echo "## routes"; ip route show table all | sort
  echo "## netns"; ip netns list 2>/dev/null | sort
  echo "## iptables"; iptables-save | keep -vE '^#|^:' | sort
  echo "## ip6tables"; ip6tables-save | keep -vE '^#|^:' | sort
  echo "## nft"; nft list tables 2>/dev/null | sort
  echo "## sysctls"; for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s" 2>/dev/null || echo -)"; done
  echo "## paths"; for p in "${OUTSIDE_PATHS[@]}"; do [[ -e $p ]] && echo "$p"; done
  echo "## mounts"; awk '{print $2}' /proc/mounts | keep -E "^$D|/netns|kubelet|containerd" | sort
  echo "## cgroups"; find /sys/fs/cgroup -maxdepth 2 -name 'kubepods*' 2>/dev/null | sort
  # Exited but not yet reaped (state Z) is gone: PID 1 reaps when it gets to it (see running).
  echo "## processes"; ps -eo stat=,comm= | awk '$1 !~ /^Z/ {print $2}' | keep -xE 'etcd|kube-.*|kubelet|containerd(-shim.*)?|coredns|pause' | sort
}

# --- verbs -------------------------------------------------------------------------------------

up() {
  [[ $EUID -eq 0 ]] || die "run as root"
  [[ -e $D ]] && die "$D exists: run '$0 down' first"
  for b in "$K8S_BIN/kube-apiserver" "$K8S_BIN/kubelet" "$ETCD_BIN" "$COREDNS_BIN" "$REGISTRY_BIN"; do
    [[ -x $b ]] || die "$b missing: run .ci/cluster-build.sh"
  done
  for c in containerd runc ctr "$PG_BIN/postgres" /usr/lib/cni/bridge; do
    command -v "$c" >/dev/null || die "$c missing: apt-get install containerd runc containernetworking-plugins postgresql-15"
  done
  local started=$SECONDS
  mkdir -p "$D/logs" "$D/pids"
  machine_state >"$D/machine-before.txt"
  make_pki
  setup_network
  start_control_plane
  start_containerd
  start_registry
  start_postgres
  start_coredns
  start_kube_proxy
  start_kubelet
  wait_for "node $NODE" 90 kubectl wait --for=condition=Ready "node/$NODE" --timeout=2s
  log "up in $((SECONDS - started))s: $("$K8S_BIN/kubectl" version --client -o yaml | grep -m1 gitVersion | tr -d ' ')"
  env_
}

env_() {
  echo "export KUBECONFIG=$D/pki/admin.kubeconfig"
  echo "export ITEM_API_CLUSTER_DIR=$D"
  echo "export ITEM_API_CLUSTER_BIN=$K8S_BIN"
  echo "export ITEM_API_CLUSTER_NODE_IP=$NODE_IP"
  echo "export ITEM_API_CLUSTER_POSTGRES_SOCKET=$D/postgres"
  echo "export ITEM_API_CLUSTER_REGISTRY=localhost:$REGISTRY_PORT"
  echo "export SKAFFOLD_DEFAULT_REPO=localhost:$REGISTRY_PORT"
  echo "export ITEM_API_SKAFFOLD=$SKAFFOLD_BIN"
}

load() {
  [[ -f ${1:-} ]] || die "usage: $0 load IMAGE_ARCHIVE"
  ctr_ images import "$1" | sed 's/^/[cluster] imported /' >&2
}

# Exited counts as stopped even before it is reaped: the components' parent is PID 1, which reaps
# them up to ~2 s later, and waiting for that took 2 s per component (18 of the 23 s of `down`).
running() { kill -0 "$1" 2>/dev/null && [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]; }

stop_pid() { # name signal timeout
  local pidfile="$D/pids/$1" pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if running "$pid"; then
    kill "-$2" -- "-$pid" 2>/dev/null || kill "-$2" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + $3))
    while running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

down() {
  [[ -d $D ]] || { log "nothing to do: $D does not exist"; return 0; }
  stop_pid kubelet TERM 10
  # Containers outlive the kubelet: stop them, then their shims, through containerd itself.
  if [[ -S $D/containerd/containerd.sock ]]; then
    local id
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
    sleep 0.5
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1 || true; done
  fi
  for name in kube-proxy coredns registry kube-scheduler kube-controller-manager containerd kube-apiserver etcd; do
    stop_pid "$name" TERM 10
  done
  stop_pid postgres INT 10
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $D/" 2>/dev/null || true
  # kube-proxy removes its own chains; the kubelet's canaries, our FORWARD rules and the
  # namespaces the CNI plugin made for pods are removed by name.
  "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  local table chain
  for tool in iptables ip6tables; do
    for table in filter nat mangle; do
      "$tool" -t "$table" -S 2>/dev/null | keep -E '^-A .*(KUBE-|item-api-local)' | sed 's/^-A/-D/' |
        while read -r rule; do eval "$tool -t $table $rule" 2>/dev/null || true; done
      for chain in $("$tool" -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\)/\1/p'); do
        "$tool" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$tool" -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\)/\1/p'); do
        "$tool" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  # Tables that only exist because rules were added to them (iptables-nft creates them on use).
  local family name
  while read -r _ family name; do
    nft delete table "$family" "$name" 2>/dev/null || true
  done < <(comm -13 <(sed -n '/^## nft/,/^## /p' "$D/machine-before.txt" | keep '^table' | sort) \
                    <(nft list tables 2>/dev/null | sort))
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    grep -qx "$ns" <(sed -n '/^## netns/,/^## /p' "$D/machine-before.txt") || ip netns delete "$ns" 2>/dev/null || true
  done
  # The host ends of the pods' veth pairs, by the bridge they hang on: deleting one end deletes the
  # pair even while something still holds the pod's namespace (seen once after a long run).
  local veth
  for veth in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$veth" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  awk '{print $2}' /proc/mounts | keep -E "^$D|^/run/netns/cni-|^/var/run/netns/cni-" | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  local cg
  for cg in $(find /sys/fs/cgroup -depth -type d -path '*kubepods*' 2>/dev/null); do rmdir "$cg" 2>/dev/null || true; done
  # Restore what the kubelet and this script changed outside the cluster directory.
  local line
  while read -r line; do
    [[ $line == *=- ]] && continue
    sysctl -qw "$line" 2>/dev/null || true
  done < <(sed -n '/^## sysctls/,/^## /p' "$D/machine-before.txt" | keep '=')
  for p in "${OUTSIDE_PATHS[@]}"; do
    [[ -e $p ]] && ! grep -qx "$p" <(sed -n '/^## paths/,/^## /p' "$D/machine-before.txt") && rm -rf "$p"
  done
  machine_state >"$D/machine-after.txt"
  if ! diff -u "$D/machine-before.txt" "$D/machine-after.txt" >&2; then
    die "the machine differs from before 'up' (above); $D kept for inspection"
  fi
  rm -rf "$D"
  log "down: nothing left behind"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  load) load "${2:-}" ;;
  env) env_ ;;
  *) echo "usage: $0 up|down|load IMAGE_ARCHIVE|env" >&2; exit 2 ;;
esac
