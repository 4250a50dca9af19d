#!/usr/bin/env bash
# Benchmarks: Go (cmd/benchserver on server/socketio) against Node's socket.io 4.8 (bench/node), same
# generator (cmd/loadtest), same machine, back to back; plus the raw WebSocket baselines.
#
#   bench/run.sh          full run (< 10 minutes): writes bench/results/results.jsonl, bench/results/plot.png
#                         and the tables of BENCHMARKS.md, prints the Go/Node ratios
#   bench/run.sh smoke    every scenario at tiny sizes (seconds); exits non-zero if the harness breaks;
#                         writes nothing in the tree
#
# Environment: BENCH_SERVERS (default "go node raw raw-sync"), BENCH_OUT (results directory),
# BENCH_IDLE (idle clients, default 10000), BENCH_DURATION (measurement window, default 5s),
# BENCH_PIN=1 pins the server to CPU 1 and the generator to CPU 0 (taskset).
# Loopback only; the fd limit is raised for the idle scenario.
set -euo pipefail

MODE=${1:-full}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SERVERS=${BENCH_SERVERS:-"go node raw raw-sync"}
TMP=$(mktemp -d /tmp/maoga-bench.XXXXXX)
PIDS=()

cleanup() {
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# File descriptors: every client is one fd in the generator and one in the server.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "fd limit: $(ulimit -n)"
T0=$(date +%s)
echo "load before: $(uptime)"

if [ "$MODE" = smoke ]; then
	OUT=$TMP/out
	IDLE=60; DUR=500ms; WARM=200ms; IDLE_WARM=300ms
	ECHO_RATES="200"; ECHO_CLIENTS=20
	FAN_ROOMS="20"; FAN_FIXED=""; CHAT_CLIENTS=40; CHAT_RATE=100
	CHURN_WORKERS=2; CLUSTER_ROOM=20; ECHO_REPEAT=""
else
	OUT=${BENCH_OUT:-$ROOT/bench/results}
	IDLE=${BENCH_IDLE:-10000}; DUR=${BENCH_DURATION:-5s}; WARM=1s; IDLE_WARM=2s
	ECHO_RATES="1000 2500 5000 7500"; ECHO_CLIENTS=1000
	FAN_ROOMS="100 1000"; FAN_FIXED="100:500 1000:50"; CHAT_CLIENTS=5000; CHAT_RATE=1000
	CHURN_WORKERS=20; CLUSTER_ROOM=1000; ECHO_REPEAT="1 2 3 4"
fi
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

echo "building..."
go build -o "$TMP/benchserver" ./cmd/benchserver
go build -o "$TMP/loadtest" ./cmd/loadtest

HAVE_NODE=0
if [[ " $SERVERS " == *" node "* ]]; then
	if [ ! -d bench/node/node_modules/socket.io ]; then
		(cd bench/node && npm ci --no-audit --no-fund --loglevel=error)
	fi
	HAVE_NODE=1
fi

PIN_SRV=(); PIN_GEN=()
if [ "${BENCH_PIN:-0}" = 1 ] && command -v taskset >/dev/null; then
	PIN_SRV=(taskset -c 1); PIN_GEN=(taskset -c 0)
fi

REDIS_PID=""; REDIS_ADDR=""
start_redis() {
	command -v redis-server >/dev/null || return 1
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$TMP/redis.log" 2>&1 &
	REDIS_PID=$!; PIDS+=("$REDIS_PID")
	REDIS_ADDR=127.0.0.1:$port
	for _ in $(seq 50); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# start KIND NAME [redis-addr]: starts a server, sets SRV_PID and SRV_URL.
start() {
	local kind=$1 name=$2 redis=${3:-} af=$TMP/addr.$2
	rm -f "$af"
	case $kind in
	go) "${PIN_SRV[@]}" "$TMP/benchserver" -addr-file "$af" ${redis:+-redis "$redis"} >"$TMP/$name.log" 2>&1 & ;;
	raw) "${PIN_SRV[@]}" "$TMP/benchserver" -mode raw -addr-file "$af" >"$TMP/$name.log" 2>&1 & ;;
	raw-sync) "${PIN_SRV[@]}" "$TMP/benchserver" -mode raw-sync -addr-file "$af" >"$TMP/$name.log" 2>&1 & ;;
	node) "${PIN_SRV[@]}" node --expose-gc bench/node/server.js --addr-file "$af" ${redis:+--redis "$redis"} >"$TMP/$name.log" 2>&1 & ;;
	esac
	SRV_PID=$!; PIDS+=("$SRV_PID")
	for _ in $(seq 100); do
		[ -s "$af" ] && break
		sleep 0.1
	done
	if [ ! -s "$af" ]; then
		echo "server $name did not start:"; cat "$TMP/$name.log"; exit 1
	fi
	SRV_URL=http://$(cat "$af")
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

FAILED=0
FAILS=()
CASE_TIMEOUT=120 # a hung case fails instead of hanging the run
# case SERVER SCENARIO loadtest-args...: one fresh server per case, so memory is measured from a clean start.
case_() {
	local srv=$1; shift
	local raw=()
	[[ $srv == raw* ]] && raw=(-raw)
	start "$srv" "$srv"
	echo "== $srv $*"
	if ! timeout "$CASE_TIMEOUT" "${PIN_GEN[@]}" "$TMP/loadtest" -label "$srv" -url "$SRV_URL" -pid "$SRV_PID" -json "$RESULTS" "${raw[@]}" \
		-warmup "$WARM" -duration "$DUR" "$@" | grep -v '^RESULT '; then
		echo "!! FAILED: $srv $*"; FAILED=$((FAILED + 1)); FAILS+=("$srv $*")
	fi
	stop "$SRV_PID"
}

# each scenario: Go then Node back to back, so that both see the same machine (load drifts over a run)
both() {
	for srv in go node; do
		[[ " $SERVERS " == *" $srv "* ]] || continue
		case_ "$srv" "$@"
	done
}
both -scenario idle -clients "$IDLE" -warmup "$IDLE_WARM"
# Stretch (50k idle clients on one node): as many as the fd limit allows in one process (the generator
# holds one fd per client, the server another), Go only, labelled go-max.
MAXC=$(( $(ulimit -n) - 1000 ))
[ "$MAXC" -gt 50000 ] && MAXC=50000
# and as the ephemeral ports allow: every client comes from 127.0.0.1 to one server port
read -r PLO PHI < /proc/sys/net/ipv4/ip_local_port_range
[ "$MAXC" -gt $((PHI - PLO - 1000)) ] && MAXC=$((PHI - PLO - 1000))
[ "$MODE" = smoke ] && MAXC=$((IDLE * 2))
if [[ " $SERVERS " == *" go "* ]] && [ "$MAXC" -gt "$IDLE" ]; then
	start go go-max
	echo "== go-max -scenario idle -clients $MAXC"
	if ! timeout "$CASE_TIMEOUT" "${PIN_GEN[@]}" "$TMP/loadtest" -label go-max -url "$SRV_URL" -pid "$SRV_PID" -json "$RESULTS" \
		-scenario idle -clients "$MAXC" -warmup "$IDLE_WARM" -duration "$DUR" | grep -v '^RESULT '; then
		echo "!! FAILED: go-max idle $MAXC"; FAILED=$((FAILED + 1)); FAILS+=("go-max idle $MAXC")
	fi
	stop "$SRV_PID"
fi
for r in $ECHO_RATES; do
	both -scenario echo -clients "$ECHO_CLIENTS" -rate "$r"
done
# the 5k msgs/s echo target is a p99, which stalls of a shared machine dominate: four more alternating
# rounds (five in all), the report takes the median and lists them all
for _ in $ECHO_REPEAT; do
	both -scenario echo -clients "$ECHO_CLIENTS" -rate 5000
done
# Saturated fan-out: the sender keeps about 16,000 deliveries in flight whatever the room size (a
# window of 16 messages for a room of 1,000, 160 for a room of 100), so that a small room measures the
# server's throughput rather than the round trip of a 16-message window.
win() { local w=$((16000 / $1)); [ "$w" -lt 16 ] && w=16; echo "$w"; }
for room in $FAN_ROOMS; do
	both -scenario fanout -room-size "$room" -window "$(win "$room")"
done
for fr in $FAN_FIXED; do
	both -scenario fanout -room-size "${fr%%:*}" -rate "${fr##*:}"
done
both -scenario chat -clients "$CHAT_CLIENTS" -room-size 10 -rate "$CHAT_RATE"
both -scenario churn -workers "$CHURN_WORKERS"
both -scenario churn-polling -workers "$CHURN_WORKERS"
for srv in raw raw-sync; do
	[[ " $SERVERS " == *" $srv "* ]] || continue
	for room in $FAN_ROOMS; do
		case_ "$srv" -scenario fanout -room-size "$room" -window "$(win "$room")"
	done
done

# Cross-node fan-out: two nodes of the same kind on one Redis; sender on node A, the room on node B.
if start_redis; then
	for srv in go node; do
		[[ " $SERVERS " == *" $srv "* ]] || continue
		start "$srv" "${srv}A" "$REDIS_ADDR"; A_PID=$SRV_PID; A_URL=$SRV_URL
		start "$srv" "${srv}B" "$REDIS_ADDR"; B_PID=$SRV_PID; B_URL=$SRV_URL
		sleep 0.5
		echo "== $srv cluster (redis $REDIS_ADDR)"
		if ! timeout "$CASE_TIMEOUT" "${PIN_GEN[@]}" "$TMP/loadtest" -label "$srv" -scenario cluster -url "$A_URL" -pid "$A_PID" -url2 "$B_URL" -pid2 "$B_PID" \
			-room-size "$CLUSTER_ROOM" -json "$RESULTS" -warmup "$WARM" -duration "$DUR" | grep -v '^RESULT '; then
			echo "!! FAILED: $srv cluster"; FAILED=$((FAILED + 1)); FAILS+=("$srv cluster")
		fi
		stop "$A_PID"; stop "$B_PID"
	done
	stop "$REDIS_PID"
else
	# like the Go tests (internal/redisserver), a missing redis-server skips the Redis rows, loudly
	echo "!! SKIPPED: redis-server not installed (apt-get install redis-server): cluster scenario not run"
fi

export NODE_VERSION=$(node --version 2>/dev/null || echo none)
echo "load after: $(uptime)"
if [ "$MODE" = smoke ]; then
	go run ./bench/report -in "$RESULTS" || { FAILED=$((FAILED + 1)); FAILS+=("report"); }
else
	go run ./bench/report -in "$RESULTS" -md BENCHMARKS.md -png "$OUT/plot.png" -png-ref bench/results/plot.png
	echo "results: $RESULTS, plot: $OUT/plot.png, tables: BENCHMARKS.md"
fi
if [ "$FAILED" -gt 0 ]; then
	echo "!! bench $MODE: $FAILED case(s) FAILED:" >&2
	printf '!!   %s\n' "${FAILS[@]}" >&2
	exit 1
fi
echo "bench $MODE: all cases OK ($(( $(date +%s) - T0 )) s)"
