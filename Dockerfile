# syntax=docker/dockerfile:1
# Gatehouse: build with the full toolchain, run on a slim image with production dependencies only.
#   docker build -t ghcr.io/your-org/gatehouse:0.1.0 .
#   docker run -p 8080:8080 -p 9464:9464 -v $PWD/gatehouse.yaml:/app/gatehouse.yaml:ro ghcr.io/your-org/gatehouse:0.1.0

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: TypeScript -> dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first: the dependency layer is reused until package*.json change.
COPY package.json package-lock.json ./
# --ignore-scripts: the "prepare" script runs tsc, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
# npm start reads ./gatehouse.yaml (here /app/gatehouse.yaml: mount yours there) unless
# GATEHOUSE_CONFIG names another file. npm's cache and logs go to /tmp, so the container
# also runs with a read-only root filesystem.
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_CACHE=/tmp/.npm
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; no install scripts run (none of them is needed at run time).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /tmp/.npm
# Only the compiled gateway: dist/src (the build also compiles tests, which stay behind).
COPY --from=build /app/dist/src ./dist/src
COPY bin ./bin
# store.dataDir (./data): owned by the runtime user; Kubernetes mounts an emptyDir here.
RUN mkdir -p /app/data && chown node:node /app/data
# The official image's "node" user, by number: Kubernetes' runAsNonRoot can only verify
# a numeric user.
USER 1000:1000
EXPOSE 8080 9464
# Docker's own health check (Kubernetes uses the Deployment's probes instead). Assumes the
# default listen port 8080.
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# `npm start` without npm as PID 1 (SIGTERM reaches the gateway itself). One GC thread: on a
# pod with one or two CPUs V8's parallel GC helpers cost more CPU than they save; a heap that
# grows by half its live size rather than V8's up to 4x keeps RSS near the live set
# (bench/README.md).
CMD ["node", "--single-threaded-gc", "--heap-growing-percent=50", "--max-semi-space-size=8", "--no-allocation-site-pretenuring", "bin/gatehouse.js", "serve"]
