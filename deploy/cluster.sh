#!/usr/bin/env bash
# A local three-node Maoga cluster without Docker:
#   Redis (its own redis-server on REDIS_PORT, or REDIS_URL if given), one shared store
#   (cmd/storeserver: the embedded FerretDB on STORE_PORT, or MONGODB_URI if given), three maoga
#   processes on 8081, 8082, 8083 and, when nginx is installed, nginx on 8080 in front of them
#   (deploy/nginx.conf with the upstreams rewritten to 127.0.0.1).
#
#   deploy/cluster.sh            # start everything, Ctrl-C stops everything
#   JWT_SECRET=... NODES=2 deploy/cluster.sh
#
# State and logs live in $CLUSTER_DIR (default ./data/cluster): node<N>.log, redis.log, store.log,
# nginx-error.log. Nothing is left running after Ctrl-C (or when one process dies).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/data/cluster}
NODES=${NODES:-3}
BASE_PORT=${BASE_PORT:-8081}
LB_PORT=${LB_PORT:-8080}
REDIS_PORT=${REDIS_PORT:-6390}
STORE_PORT=${STORE_PORT:-27018}
JWT_SECRET=${JWT_SECRET:-local-cluster-secret-change-me-0123456789}
mkdir -p "$CLUSTER_DIR/bin"

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo "cluster: stopping"
  # Reverse order: nginx and the nodes first (they still need Redis and the store to shut down cleanly).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

wait_port() { # host port what
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "cluster: $3 did not open $1:$2 (see $CLUSTER_DIR)" >&2
  return 1
}

echo "cluster: building"
go build -o "$CLUSTER_DIR/bin/maoga" ./cmd/maoga
go build -o "$CLUSTER_DIR/bin/storeserver" ./cmd/storeserver

if [[ -z "${REDIS_URL:-}" ]]; then
  command -v redis-server >/dev/null || { echo "cluster: redis-server not found (apt-get install redis-server) and REDIS_URL not set" >&2; exit 1; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
    >"$CLUSTER_DIR/redis.log" 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 "$REDIS_PORT" redis-server
  REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
fi

if [[ -z "${MONGODB_URI:-}" ]]; then
  DATA_DIR="$CLUSTER_DIR/store" STORE_ADDR=127.0.0.1:$STORE_PORT "$CLUSTER_DIR/bin/storeserver" \
    >"$CLUSTER_DIR/store.log" 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 "$STORE_PORT" storeserver
  MONGODB_URI=mongodb://127.0.0.1:$STORE_PORT/
fi

# Node 1 first: it creates the collections and indexes (the embedded FerretDB does not cope with
# several clients creating the same collection at once); the others start once it listens.
for ((n = 1; n <= NODES; n++)); do
  port=$((BASE_PORT + n - 1))
  # nginx (below) connects from 127.0.0.1: its X-Forwarded-For is believed (TRUSTED_PROXIES).
  PORT=$port HOST=127.0.0.1 MONGODB_URI=$MONGODB_URI REDIS_URL=$REDIS_URL JWT_SECRET=$JWT_SECRET \
    TRUSTED_PROXIES=${TRUSTED_PROXIES:-127.0.0.1/32,::1/128} \
    "$CLUSTER_DIR/bin/maoga" >"$CLUSTER_DIR/node$n.log" 2>&1 &
  pids+=($!)
  if ((n == 1)); then wait_port 127.0.0.1 "$port" "maoga node 1"; fi
done
for ((n = 2; n <= NODES; n++)); do
  wait_port 127.0.0.1 $((BASE_PORT + n - 1)) "maoga node $n"
done

lb=""
if command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; then
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  conf="$CLUSTER_DIR/nginx.conf"
  servers=""
  for ((n = 1; n <= NODES; n++)); do
    servers+="        server 127.0.0.1:$((BASE_PORT + n - 1)) max_fails=3 fail_timeout=10s;\n"
  done
  # deploy/nginx.conf with local upstreams, port, and paths an unprivileged nginx can write.
  awk -v servers="$servers" '
    /server maoga[0-9]+:8080/ { if (!done) { printf "%s", servers; done = 1 }; next }
    { print }' deploy/nginx.conf |
    sed -e "s#listen 80;#listen 127.0.0.1:$LB_PORT;#" \
        -e "s#/tmp/nginx#$CLUSTER_DIR/nginx#g" \
        -e "s#worker_processes auto;#worker_processes 1;#" >"$conf"
  "$NGINX" -e "$CLUSTER_DIR/nginx-error.log" -c "$conf" -p "$CLUSTER_DIR" -g 'daemon off;' \
    2>>"$CLUSTER_DIR/nginx-error.log" &
  pids+=($!)
  wait_port 127.0.0.1 "$LB_PORT" nginx
  lb="http://127.0.0.1:$LB_PORT (nginx, sticky by client address)"
fi

echo "cluster: up — redis $REDIS_URL, store $MONGODB_URI"
for ((n = 1; n <= NODES; n++)); do echo "  node $n: http://127.0.0.1:$((BASE_PORT + n - 1))"; done
[[ -n "$lb" ]] && echo "  front: $lb" || echo "  (nginx not installed: use the node ports directly)"
echo "cluster: logs in $CLUSTER_DIR; Ctrl-C stops everything"

# Stop everything when any process exits.
wait -n "${pids[@]}" || true
echo "cluster: a process exited or Ctrl-C; logs in $CLUSTER_DIR" >&2
