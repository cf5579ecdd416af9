#!/usr/bin/env bash
# Metadata scale check (docs/benchmarks.md, "Cluster scale"):
#   1. time creating 1,000 partitions with replication factor 3 on a three-node dev cluster;
#   2. grow to 10,000 partition-replicas (3,334 partitions x RF 3) and measure the brokers' idle CPU.
# Usage: scripts/scale-check.sh [idle-seconds]   (default 30). Needs ports 19092-19116 free.
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${1:-30}
BIN=./bin/sluice
DIR=$(mktemp -d /tmp/sluice-scale.XXXXXX)
BASE=19092
go build -o "$BIN" ./cmd/sluice

"$BIN" dev --nodes 3 --data-dir "$DIR" --base-port "$BASE" --log-level warn > "$DIR/dev.out" 2>&1 &
DEV=$!
trap 'kill -INT $DEV 2>/dev/null || true; wait $DEV 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 300); do grep -q "ready in" "$DIR/dev.out" 2>/dev/null && break; sleep 0.1; done
grep -q "ready in" "$DIR/dev.out" || { cat "$DIR/dev.out"; exit 1; }
CL="--cluster $DIR/cluster.json"

ms() { date +%s%3N; }
t0=$(ms)
"$BIN" topic create scale-a --partitions 1000 --replication-factor 3 $CL >/dev/null
t1=$(ms)
echo "create 1000 partitions (RF 3): $((t1 - t0)) ms"

"$BIN" topic create scale-b --partitions 2334 --replication-factor 3 $CL >/dev/null
echo "partition-replicas: $(( (1000 + 2334) * 3 )) on 3 brokers"

PIDS=$(python3 -c "import json,sys; print(' '.join(str(n['pid']) for n in json.load(open('$DIR/cluster.json'))['nodes']))")
TCK=$(getconf CLK_TCK)
cpu() { local s=0; for p in $PIDS; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); s=$((s + $1 + $2)); done; echo $s; }
sleep 5 # let creation settle before measuring idle
c0=$(cpu); w0=$(ms)
sleep "$IDLE"
c1=$(cpu); w1=$(ms)
python3 - "$c0" "$c1" "$w0" "$w1" "$TCK" <<'PY'
import sys
c0, c1, w0, w1, tck = map(int, sys.argv[1:])
cpu_s = (c1 - c0) / tck
wall = (w1 - w0) / 1000
print(f"idle: {cpu_s:.2f} CPU-s in {wall:.1f} s wall for all three brokers = {100*cpu_s/wall:.1f}% of one core")
PY
"$BIN" cluster status $CL | tail -n +2 | head -8
