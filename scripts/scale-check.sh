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
# Let creation settle before measuring idle: poll every node's /v1/cluster until all three have applied the
# same image holding all 3,334 partitions, none offline or under-replicated (60 s deadline).
python3 - "$DIR/cluster.json" 3334 60 <<'PY'
import json, sys, time, urllib.request
nodes = json.load(open(sys.argv[1]))["nodes"]
want, deadline = int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while True:
    try:
        docs = [json.load(urllib.request.urlopen("http://%s/v1/cluster" % n["http"], timeout=5)) for n in nodes]
        last = "; ".join("node %d: image %d, %d partitions, %d offline, %d under-replicated" % (
            d["node_id"], d["image_index"], d["partitions"], len(d["offline_partitions"]),
            len(d["under_replicated_partitions"])) for d in docs)
        if len({d["image_index"] for d in docs}) == 1 and all(
                d["partitions"] == want and not d["offline_partitions"] and not d["under_replicated_partitions"]
                for d in docs):
            break
    except OSError as e:
        last = str(e)
    if time.monotonic() > deadline:
        sys.exit("cluster did not settle within %s s: %s" % (sys.argv[3], last))
    time.sleep(0.2)
PY
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
