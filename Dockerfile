# syntax=docker/dockerfile:1.7
# One image for the whole suite: `docker run soma <auth|authz|secrets|audit|retention>` starts that service,
# `docker run soma cli <args…>` runs the operator CLI. Why one image and not five: docs/adr/0601-one-image-per-suite.md.
# Pin the base by digest in your registry mirror (`node:20.20.2-bookworm-slim@sha256:…`); the tag is the floor.
ARG NODE_IMAGE=node:20.20.2-bookworm

# ---- build: full toolchain (python3, make, g++ for better-sqlite3), dev dependencies, tsc ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV CI=true NX_DAEMON=false NX_NO_CLOUD=true
COPY package.json package-lock.json ./
# Lockfile only: every package is checked against its integrity hash.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json tsconfig.build.json nx.json ./
COPY libs ./libs
COPY apps ./apps
COPY bin ./bin
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/.cache dist/.tsbuildinfo \
 && find dist -name '*.map' -delete

# ---- runtime: slim Debian, no compiler, no npm, non-root, nothing writable but its volumes ----
FROM ${NODE_IMAGE}-slim AS runtime
# npm/npx/corepack are not needed at run time and carry most of the image's third-party code.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* \
 && mkdir -p /var/lib/soma/buffer \
 && chown 1000:1000 /var/lib/soma/buffer
WORKDIR /app
COPY --from=build --chown=root:root /src/package.json ./package.json
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/dist ./dist
COPY --chown=root:root libs/contracts/proto ./proto
COPY --chown=root:root infra/postgres/migrations ./infra/postgres/migrations
COPY --chown=root:root infra/openfga ./infra/openfga
# The dispatcher: the first argument picks the service (or the CLI); anything else is refused.
COPY --chown=root:root <<'JS' /app/entrypoint.mjs
import { pathToFileURL } from 'node:url';
const services = new Set(['auth', 'authz', 'secrets', 'audit', 'retention']);
const [target, ...rest] = process.argv.slice(2);
if (target === 'cli') {
  process.argv = [process.argv[0], 'soma', ...rest];
  await import(pathToFileURL('/app/dist/apps/cli/src/main.js').href);
} else if (target && services.has(target)) {
  await import(pathToFileURL(`/app/dist/apps/${target}/src/main.js`).href);
} else {
  process.stderr.write(`usage: <${[...services].join('|')}> | cli <command…>\n`);
  process.exit(64);
}
JS
# Listen on all interfaces inside the container (the loopback default suits a laptop, not a pod);
# protos come from the image; the outbox lives on a volume.
ENV NODE_ENV=production \
    BIND_HOST=0.0.0.0 \
    SOMA_PROTO_DIR=/app/proto \
    POSTGRES_MIGRATIONS_DIR=/app/infra/postgres/migrations \
    EVENT_BUFFER_DIR=/var/lib/soma/buffer
# The image's `node` user, numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
VOLUME ["/var/lib/soma/buffer"]
EXPOSE 20020 20021 20030 20031 20040 20041 20050 20051 20060 20061
STOPSIGNAL SIGTERM
# No default service: an image started without one prints its usage and exits 64.
ENTRYPOINT ["node", "/app/entrypoint.mjs"]
