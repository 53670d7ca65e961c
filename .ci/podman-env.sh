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
export CONTAINERS_CONF="$podman_dir/containers.conf"
export CONTAINERS_STORAGE_CONF="$podman_dir/storage.conf"
