# The program as one image: `docker run IMAGE [roles]` runs the roles of src/Roles.ts (`all`, the default, or a
# comma list such as `api` or `relay,worker,projector`), `docker run IMAGE migrate` applies the migrations and
# exits. Configuration through the environment (README: Configuration); with NODE_ENV=production (set here) the
# api role refuses to start without an ADMIN_TOKEN of its own.
#
# Node is the release CI runs the Node 26 tests on (scripts/node.sh; test/unit/dockerfile.test.ts checks that
# the two agree). Debian 13 (trixie): bookworm left Debian's regular support in June 2026. Classic-builder
# syntax only (no BuildKit mounts), so docker-compose 1.29's `build: .` builds it too.

# 1. Compile: every dependency, TypeScript sources → dist/.
FROM node:26.12.1-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# no install scripts: package.json "allowScripts" allows none (their native binaries come as prebuilt packages)
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. The production dependencies only (no TypeScript, tsx, vitest), without npm's cache.
FROM node:26.12.1-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. What runs: dist/, the production node_modules, package.json ("type": "module") and migrations/ (read at
# startup by every role and by readiness, src/Sql.ts). Owned by root, run as the image's unprivileged `node`
# user (uid 1000, numeric so that Kubernetes' runAsNonRoot can verify it): the program writes no files.
FROM node:26.12.1-trixie-slim AS runtime
ENV NODE_ENV=production
# the old-generation cap and the young generation of scripts/start.sh (its comments say why); override
# NODE_OPTIONS to change them
ENV NODE_OPTIONS="--max-old-space-size=256 --max-semi-space-size=32"
WORKDIR /app
COPY package.json ./
COPY migrations ./migrations
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER 1000:1000
# PORT (api), OPS_PORT (health and /metrics of a process without the api role), PROVIDER_PORT (simulator)
EXPOSE 3000 9464 3100
# /health/ready on OPS_PORT, or on PORT when nothing listens there (the api serves it itself): src/healthcheck.ts
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "dist/healthcheck.js"]
# every role drains and exits on SIGTERM within SHUTDOWN_TIMEOUT_MS (default 15 s): give `docker stop` more
# than that (`docker stop -t 20`, compose `stop_grace_period`)
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/main.js"]
CMD ["all"]
