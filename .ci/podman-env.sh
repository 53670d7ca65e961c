# Sourced by the image scripts: podman with a configuration and a storage of the project's own,
# under the cache directory, so CI reuses the built layers and nothing in /etc/containers changes.
# This machine needs: runc (crun refuses hybrid cgroups), explicit ulimits (root lacks
# CAP_SYS_RESOURCE, so podman's default nofile limit cannot be set), cgroupfs (no systemd).
# The test suite (test/image) finds the same two files at the same paths.
podman_dir="${XDG_CACHE_HOME:-$HOME/.cache}/item-api/containers"
podman_run_dir="${XDG_RUNTIME_DIR:-/run}/item-api-containers"
mkdir -p "$podman_dir/storage"
cat >"$podman_dir/storage.conf.partial" <<CONF
[storage]
driver = "overlay"
graphroot = "$podman_dir/storage"
runroot = "$podman_run_dir/storage"
CONF
mv "$podman_dir/storage.conf.partial" "$podman_dir/storage.conf"
cat >"$podman_dir/containers.conf.partial" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$podman_run_dir/libpod"
CONF
mv "$podman_dir/containers.conf.partial" "$podman_dir/containers.conf"

# Builds (podman build here, and builds that arrive through podman's Docker API, e.g. skaffold's
# docker builder, which cannot pass --volume) use containers-build.conf: the host network, and
# npm reaching the registry through this machine's TLS setup, i.e. a global npmrc naming the
# machine's CA bundle, both mounted read-only into each RUN step only, so their content never
# lands in a layer (buildah leaves the two mount points as empty files, which test/image checks).
# /usr/local/etc/npmrc is npm's global config in the official layout.
ca_bundle=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$podman_dir/build"
printf 'cafile=/usr/local/etc/npm-build-ca.crt\naudit=false\nfund=false\nupdate-notifier=false\n' >"$podman_dir/build/npmrc"
chmod 0644 "$podman_dir/build/npmrc"
sed "s|^\[containers\]\$|[containers]\nnetns = \"host\"\nvolumes = [\"$podman_dir/build/npmrc:/usr/local/etc/npmrc:ro\", \"$ca_bundle:/usr/local/etc/npm-build-ca.crt:ro\"]|" \
  "$podman_dir/containers.conf" >"$podman_dir/containers-build.conf.partial"
mv "$podman_dir/containers-build.conf.partial" "$podman_dir/containers-build.conf"
export CONTAINERS_CONF="$podman_dir/containers.conf"
export CONTAINERS_BUILD_CONF="$podman_dir/containers-build.conf"
export CONTAINERS_STORAGE_CONF="$podman_dir/storage.conf"
