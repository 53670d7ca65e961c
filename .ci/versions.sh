# The versions of every tool and component the CI scripts build, in one place. Sourced by
# .ci/k8s-tools.sh, .ci/cluster-build.sh and .ci/image-build.sh; a change here rebuilds what
# it names, because every cache entry is keyed by its version.
HELM3_VERSION=v3.21.4
HELM4_VERSION=v4.3.1
KUBECTL_VALIDATE_VERSION=v0.0.4
# skaffold itself has replace directives (not go-installable); only its schemas are used.
SKAFFOLD_MODULE_VERSION=v2.16.1
SKAFFOLD_SCHEMA_VERSION=v4beta13
# The local cluster: every component built from module source at these versions.
KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
# The stand-in for the official node image (.ci/image-build.sh): Node itself is .nvmrc's.
NPM_VERSION=11.19.0
DEBIAN_SUITE=bookworm
