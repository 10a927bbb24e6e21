# Quantum Nexus node image: `qnexus` (node, beacon, devnet init, …) on Node.js 20, as a non-root user.
# docker-compose.yml runs every devnet process from this one image; docs/devnet.md explains it.
#   docker build -t qnexus:dev .
#   docker run --rm qnexus:dev --help

# ---- build: install with the lockfile (native build tools in case classic-level has to compile
# its LevelDB binding instead of using a prebuilt one), compile TypeScript, drop dev dependencies.
FROM node:20-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc tsconfig.json tsconfig.base.json ./
COPY packages/ packages/
RUN npm ci --no-audit --no-fund
RUN npx tsc -b
RUN npm prune --omit=dev --no-audit --no-fund
# Fail the build here, not in a container, if the native LevelDB binding does not load.
RUN node -e "import('classic-level').then(async ({ ClassicLevel }) => { const db = new ClassicLevel('/tmp/probe-db'); await db.put('k', 'v'); if ((await db.get('k')) !== 'v') throw new Error('classic-level readback'); await db.close(); console.log('classic-level ok'); })"

# ---- runtime: the compiled workspace and its production node_modules only.
FROM node:20-slim
ENV NODE_ENV=production
# As the devnet launcher runs its processes (NODE_PROCESS_FLAGS in packages/cli/src/devnet.ts): a smaller young generation, one V8 helper thread.
ENV NODE_OPTIONS="--max-semi-space-size=8 --v8-pool-size=1"
# NODE_PROCESS_ENV there: large malloc blocks always mmapped, so a loaded node's heap does not fragment.
ENV MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
# /devnet: the compose `config` volume (written by `qnexus devnet init`); /data: a node's data dir.
# Empty named volumes mounted there take over this ownership, so the node user can write them.
RUN mkdir -p /devnet /data && chown node:node /devnet /data \
 && node -e "import('classic-level').then(() => console.log('classic-level loads'))"
USER node
# p2p 7000-7099 (the beacon 7099), HTTP API 7100-7199 (the beacon 7199), as in npm run devnet.
EXPOSE 7000-7199
ENTRYPOINT ["node", "/app/packages/cli/dist/bin.js"]
CMD ["--help"]
