# syntax=docker/dockerfile:1
# Base images are pinned to the Node release in .nvmrc; bump both together.

# Production dependencies only. Install scripts are skipped: the one runtime dependency
# that has one (protobufjs) is denied in package.json's allowScripts anyway, and the
# dev-only ones (embedded Postgres binaries) are not installed here.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# Development image for skaffold file sync: all dependencies, app dir owned by the
# runtime user so synced files can be written, and tar (part of Debian's base) for sync.
FROM node:24.21.0-bookworm-slim AS dev
ENV NODE_ENV=development
WORKDIR /app
RUN chown 1000:1000 /app
USER 1000:1000
COPY --chown=1000:1000 package.json package-lock.json ./
RUN npm ci && npm cache clean --force
COPY --chown=1000:1000 src ./src
COPY --chown=1000:1000 migrations ./migrations
EXPOSE 3000 9464
ENTRYPOINT []
CMD ["node", "--watch", "--import", "./src/instrument.ts", "src/main.ts"]

# Runtime: the default target (last stage). Files stay owned by root and are only
# readable by the app user, so the image works with a read-only root filesystem;
# the app writes only to /tmp, which the chart mounts as an emptyDir.
FROM node:24.21.0-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# npm is not needed at runtime; removing it shrinks what an attacker could run.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY src ./src
COPY migrations ./migrations
# Numeric UID/GID (the image's "node" user) so the kubelet can verify runAsNonRoot.
USER 1000:1000
EXPOSE 3000 9464
# node is PID 1 and receives SIGTERM itself; npm or a shell would not forward it.
# The base image's ENTRYPOINT is a shell script; reset it so nothing runs before node.
ENTRYPOINT []
CMD ["node", "--import", "./src/instrument.ts", "src/main.ts"]
