# The versions of every tool and component the CI scripts build, in one place. Sourced by
# .ci/k8s-tools.sh, .ci/cluster-build.sh and .ci/image-build.sh; a change here rebuilds what
# it names, because every cache entry is keyed by its version.
HELM3_VERSION=v3.21.4
HELM4_VERSION=v4.3.1
KUBECTL_VALIDATE_VERSION=v0.0.4
# skaffold: built from its module (replace directives repeated, .ci/cluster-build.sh); the
# chart checks also read skaffold.yaml's schema from the same module source.
SKAFFOLD_VERSION=v2.16.1
SKAFFOLD_SCHEMA_VERSION=v4beta13
# The local cluster: every component built from module source at these versions.
KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
# Cluster DNS for the local cluster (the kubernetes plugin, run on the host like the other
# components): no image can be pulled, and pods resolve Services by name as on kind.
COREDNS_VERSION=v1.15.0
# The image registry on loopback that skaffold pushes to and containerd pulls from.
REGISTRY_VERSION=v3.1.2
# Kubernetes releases whose published OpenAPI schemas the chart is validated against: the
# supported ones (1.35-1.37) and 1.34, the floor managed providers still run.
K8S_OPENAPI_RELEASES="v1.34.4 v1.35.4 v1.36.3 v1.37.2"
# Gateway API release whose standard-channel CRDs validate the chart's HTTPRoute.
GATEWAY_API_VERSION=v1.6.3
# The stand-in for the official node image (.ci/image-build.sh): Node itself is .nvmrc's.
NPM_VERSION=11.19.0
DEBIAN_SUITE=bookworm
