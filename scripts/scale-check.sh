#!/usr/bin/env bash
# Cluster scale check (docs/benchmarks.md, "Cluster scale"), in one run on fresh three-node dev clusters:
#   1. time creating 1,000 partitions with replication factor 3;
#   2. grow to 10,002 partition-replicas (3,334 partitions x RF 3; every broker runs replica fetchers)
#      and measure the brokers' idle CPU;
#   3. on a second fresh cluster, the same 10,002 partition-replicas as 10,002 partitions of RF 1
#      (no fetchers), idle CPU again; print the ratio.
# Usage: scripts/scale-check.sh [idle-seconds]   (default 30). Needs ports 19092-19116 free.
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${1:-30}
BIN=./bin/sluice
BASE=19092
go build -o "$BIN" ./cmd/sluice
TCK=$(getconf CLK_TCK)
ms() { date +%s%3N; }

DEV=""
DIR=""
cleanup() {
  if [ -n "$DEV" ]; then kill -INT "$DEV" 2>/dev/null || true; wait "$DEV" 2>/dev/null || true; fi
  if [ -n "$DIR" ]; then rm -rf "$DIR"; fi
  DEV=""; DIR=""
}
trap cleanup EXIT

start_cluster() {
  DIR=$(mktemp -d /tmp/sluice-scale.XXXXXX)
  "$BIN" dev --nodes 3 --data-dir "$DIR" --base-port "$BASE" --log-level warn > "$DIR/dev.out" 2>&1 &
  DEV=$!
  for _ in $(seq 1 300); do grep -q "ready in" "$DIR/dev.out" 2>/dev/null && break; sleep 0.1; done
  grep -q "ready in" "$DIR/dev.out" || { cat "$DIR/dev.out"; exit 1; }
  CL="--cluster $DIR/cluster.json"
  PIDS=$(python3 -c "import json; print(' '.join(str(n['pid']) for n in json.load(open('$DIR/cluster.json'))['nodes']))")
}

cpu() { local s=0; for p in $PIDS; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); s=$((s + $1 + $2)); done; echo $s; }

# settle waits until all three nodes have applied the same image holding $1 partitions, none offline or
# under-replicated, and (RF > 1) every follower caught up in its leader's view (120 s deadline).
settle() {
  python3 - "$DIR/cluster.json" "$1" 120 <<'PY'
import json, sys, time, urllib.request
nodes = json.load(open(sys.argv[1]))["nodes"]
want, deadline = int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while True:
    try:
        docs = [json.load(urllib.request.urlopen("http://%s/v1/cluster" % n["http"], timeout=10)) for n in nodes]
        lagging = sum(1 for d in docs for p in d.get("led_partitions", []) for f in p["followers"]
                      if not f["in_isr"] or f["lag_offsets"] > 0)
        last = "; ".join("node %d: image %d, %d partitions, %d offline, %d under-replicated" % (
            d["node_id"], d["image_index"], d["partitions"], len(d["offline_partitions"]),
            len(d["under_replicated_partitions"])) for d in docs) + "; %d lagging followers" % lagging
        if len({d["image_index"] for d in docs}) == 1 and lagging == 0 and all(
                d["partitions"] == want and not d["offline_partitions"] and not d["under_replicated_partitions"]
                for d in docs):
            break
    except OSError as e:
        last = str(e)
    if time.monotonic() > deadline:
        sys.exit("cluster did not settle within %s s: %s" % (sys.argv[3], last))
    time.sleep(0.5)
PY
}

# idle measures the three brokers' CPU over IDLE seconds and prints the share of one core.
idle() {
  local c0 c1 w0 w1
  c0=$(cpu); w0=$(ms)
  sleep "$IDLE"
  c1=$(cpu); w1=$(ms)
  python3 -c "
c0, c1, w0, w1, tck = $c0, $c1, $w0, $w1, $TCK
cpu_s = (c1 - c0) / tck; wall = (w1 - w0) / 1000
print('%.2f CPU-s in %.1f s wall = %.1f%% of one core' % (cpu_s, wall, 100 * cpu_s / wall))
print(100 * cpu_s / wall, file=open('$DIR/idle.pct', 'w'))"
}

start_cluster
t0=$(ms)
"$BIN" topic create scale-a --partitions 1000 --replication-factor 3 $CL >/dev/null
t1=$(ms)
echo "create 1000 partitions (RF 3): $((t1 - t0)) ms"
# The other 2,334 in three topics: one command per ~800 partitions keeps each under the broker's
# 15 s admin-request timeout on a loaded 2-core machine.
for t in b1 b2 b3; do
  "$BIN" topic create "scale-$t" --partitions 778 --replication-factor 3 $CL >/dev/null
done
settle 3334
echo -n "idle, 3,334 partitions x RF 3 = 10,002 partition-replicas (replica fetchers running): "
idle
RF3=$(cat "$DIR/idle.pct")
"$BIN" cluster status $CL | tail -n +2 | head -8
cleanup

start_cluster
for t in c1 c2 c3 d1 d2 d3; do
  "$BIN" topic create "scale-$t" --partitions 1667 --replication-factor 1 $CL >/dev/null
done
settle 10002
echo -n "idle, 10,002 partitions x RF 1 = 10,002 partition-replicas (no fetchers): "
idle
RF1=$(cat "$DIR/idle.pct")
python3 -c "print('RF 3 idle / RF 1 idle at the same partition-replica count: %.2fx (goal <= 1.5x)' % ($RF3 / $RF1))"
