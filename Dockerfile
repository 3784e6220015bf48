# syntax=docker/dockerfile:1
# The hub as a container: compiled in a build stage, run as the unprivileged `node` user.
#
#   docker build -t live-session-hub .
#   docker run -p 9001:9001 -e HUB_API_KEYS='change-me-key:*' -e ASSIST_JWT_SECRET=change-me-secret live-session-hub
#
# Dependencies come from package-lock.json only (`npm ci`), and no install script runs. For a
# build without network, fill an npm cache once on a connected machine and hand it in as the
# `npm-cache` build context (see docs/reverse-proxy.md, "Building the image offline"):
#
#   npm ci --cache .npm-cache --ignore-scripts && docker build --build-context npm-cache=.npm-cache .

# An empty npm cache unless the build is given one (`--build-context npm-cache=<dir>`).
FROM scratch AS npm-cache

FROM node:20-slim AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
# --prefer-offline: every tarball the lock file names is taken from the cache when it is there.
RUN --mount=type=bind,from=npm-cache,target=/root/.npm,rw \
    npm ci --prefer-offline --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts

FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    LISTEN_HOST=0.0.0.0 \
    LISTEN_PORT=9001 \
    HUB_DEV_KEY_FILE=/home/node/.hub-dev-key
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 9001
# The hub drains on SIGTERM (not ready, sockets closed, exit 0 within SHUTDOWN_TIMEOUT_MS):
# give `docker stop -t` at least that long.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.LISTEN_PORT || 9001) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node runs as PID 1 and gets SIGTERM itself (no npm or shell in between); the hub handles it.
CMD ["node", "dist/index.js"]
