#!/bin/bash
# Gatehouse with everything on (API key auth, Redis quotas, audit file, metrics) measured by
# ../shared/peer-bench in one run beside its direct, node-min and Portkey targets.
#   cp -r ../shared/peer-bench /tmp/peer-bench && (cd /tmp/peer-bench && npm ci)
#   npm run build && PEER_BENCH=/tmp/peer-bench bash bench/peer-bench.sh
# Redis is pinned to CPU 1 with the simulator and the gateway, as in `npm run bench`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=${PEER_BENCH:-/tmp/peer-bench}
WORK=$(mktemp -d /tmp/gatehouse-peer-XXXXXX)
RPORT=${REDIS_PORT:-16399}
taskset -c 1 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no > "$WORK/redis.log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null || true' EXIT
sleep 0.5
cat > "$WORK/gatehouse.yaml" <<YAML
listen: { host: 127.0.0.1, port: 18088 }
metrics: { host: 127.0.0.1, port: 18089 }
store: { redis: "redis://127.0.0.1:$RPORT", dataDir: $WORK/data, keyPrefix: "peer:" }
auth: { adminToken: peer-admin-token-not-secret }
roles:
  bench: { requestsPerMinute: 1000000000, tokensPerMinute: 1000000000000, tokensPerDay: 1000000000000, maxConcurrent: 100000, models: ["*"] }
models:
  sim-model: { upstream: sim }
upstreams:
  sim: { kind: vllm, targets: ["http://127.0.0.1:18000"] }
audit: { sink: file, path: $WORK/audit.jsonl }
YAML
GW="node --single-threaded-gc --heap-growing-percent=50 --max-semi-space-size=8 --no-allocation-site-pretenuring $ROOT/bin/gatehouse.js serve --config $WORK/gatehouse.yaml"
# Start once to issue the key (it lives in Redis), then let run-bench.sh start it pinned.
$GW > "$WORK/first-start.log" 2>&1 &
GPID=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18088/healthz && break; sleep 0.1; done
KEY=$(curl -s -X POST http://127.0.0.1:18088/admin/keys -H 'authorization: Bearer peer-admin-token-not-secret' \
  -H 'content-type: application/json' -d '{"name":"peer","roles":["bench"]}' | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).key))')
kill "$GPID"; wait "$GPID" || true
cd "$PEER"
TARGETS="${TARGETS:-direct node-min portkey}" MAX_SECONDS="${MAX_SECONDS:-420}" GATEWAY_NAME=gatehouse \
  GATEWAY_URL=http://127.0.0.1:18088 GATEWAY_HEADERS="Authorization: Bearer $KEY" GATEWAY_CMD="$GW" bash run-bench.sh
