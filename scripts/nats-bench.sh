#!/usr/bin/env bash
# NATS JetStream R3 publish throughput on loopback: the comparison in docs/benchmarks.md
# ("Replication"), run by `sluice bench replication --nats-script scripts/nats-bench.sh` in the same
# run as Sluice's acks=all figures, or by hand.
#
#   1. builds nats-server and the nats CLI (which holds `nats bench`) with `go install module@version`
#      through the Go module proxy into a throwaway GOBIN (not as dependencies of this module);
#      --bin-dir DIR reuses (or fills) DIR instead, so repeated runs skip the build;
#   2. starts a three-node JetStream cluster on loopback ports (base port and up) with temporary
#      storage directories, JetStream at its defaults (file storage, sync_interval 2 min);
#   3. runs `nats bench js pub async --create --replicas 3` with --size-byte messages, a bounded
#      --msgs count and --batch publishes awaiting acknowledgement at a time, under `timeout`;
#      a JetStream publish acknowledgement means a quorum (2 of 3) of the R3 stream's replicas
#      stored the message;
#   4. prints the bench client's summary, the servers' CPU, and one line for programs:
#        nats-bench: result msgs=N size=B seconds=S msgs_per_s=X mb_per_s=Y server_cpu_s=C
#      (MB = 10^6 bytes of message payload; seconds from the client's msgs/s), then tears the
#      cluster down and removes every temporary directory.
#
# Usage: scripts/nats-bench.sh [--msgs N] [--size BYTES] [--batch N] [--mode async|sync]
#                              [--base-port P] [--bin-dir DIR] [--timeout SECONDS]
# Exit status: 0 measured, 1 failed, 2 bad usage, 3 a port in base+1..base+23 is in use.
# Versions: NATS_SERVER_VERSION (default v2.15.3), NATSCLI_VERSION (default v0.5.0).
set -euo pipefail

NATS_SERVER_VERSION=${NATS_SERVER_VERSION:-v2.15.3}
NATSCLI_VERSION=${NATSCLI_VERSION:-v0.5.0}
msgs=200000
size=1024
batch=500
mode=async
base_port=24222
bin_dir=""
limit=180

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--msgs) msgs=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--batch) batch=$2; shift 2 ;;
	--mode) mode=$2; shift 2 ;;
	--base-port) base_port=$2; shift 2 ;;
	--bin-dir) bin_dir=$2; shift 2 ;;
	--timeout) limit=$2; shift 2 ;;
	-h | --help) usage ;;
	*) echo "nats-bench: unknown argument $1" >&2; usage ;;
	esac
done
for v in "$msgs" "$size" "$batch" "$base_port" "$limit"; do
	case "$v" in '' | *[!0-9]*) echo "nats-bench: not a number: $v" >&2; exit 2 ;; esac
done
[ "$msgs" -ge 1 ] && [ "$msgs" -le 10000000 ] || { echo "nats-bench: --msgs $msgs outside 1..10000000" >&2; exit 2; }
case "$mode" in async | sync) ;; *) echo "nats-bench: --mode $mode: want async or sync" >&2; exit 2 ;; esac

log() { echo "nats-bench: $*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/nats-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Build (or reuse) the binaries, outside this module and without touching its go.mod.
gobin=${bin_dir:-$work/bin}
mkdir -p "$gobin"
gobin=$(cd "$gobin" && pwd)
have_version() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q -- "${2#v}"; }
build() { # module@version, binary
	local t0=$SECONDS
	if ! (cd "$work" && GOBIN="$gobin" GOWORK=off GOFLAGS=-mod=mod go install "$1") >"$work/build.log" 2>&1; then
		log "go install $1 failed:"
		cat "$work/build.log" >&2
		exit 1
	fi
	log "built $1 in $((SECONDS - t0)) s"
}
have_version "$gobin/nats-server" "$NATS_SERVER_VERSION" || build "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
have_version "$gobin/nats" "$NATSCLI_VERSION" || build "github.com/nats-io/natscli/nats@$NATSCLI_VERSION"
server_bin=$gobin/nats-server
cli=$gobin/nats
log "$("$server_bin" --version), nats CLI $("$cli" --version 2>&1)"

# 2. A three-node cluster: client port base+i, cluster port base+10+i, monitoring base+20+i.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in 1 2 3; do
	for p in $((base_port + i)) $((base_port + 10 + i)) $((base_port + 20 + i)); do
		port_free "$p" || { log "port $p is in use; pick another --base-port"; exit 3; }
	done
done
routes=""
for i in 1 2 3; do routes="$routes${routes:+, }nats-route://127.0.0.1:$((base_port + 10 + i))"; done
urls=""
for i in 1 2 3; do
	mkdir -p "$work/n$i"
	cat >"$work/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$((base_port + i))
http: 127.0.0.1:$((base_port + 20 + i))
jetstream { store_dir: "$work/n$i" }
cluster {
  name: bench
  listen: 127.0.0.1:$((base_port + 10 + i))
  routes: [ $routes ]
}
EOF
	"$server_bin" -c "$work/n$i.conf" >"$work/n$i.log" 2>&1 &
	pids+=("$!")
	urls="$urls${urls:+,}nats://127.0.0.1:$((base_port + i))"
done
ready=0
for _ in $(seq 1 300); do
	ok=0
	for i in 1 2 3; do
		curl -fsS -o /dev/null "http://127.0.0.1:$((base_port + 20 + i))/healthz" 2>/dev/null && ok=$((ok + 1))
	done
	if [ "$ok" = 3 ] && "$cli" -s "$urls" account info >/dev/null 2>&1; then ready=1; break; fi
	sleep 0.1
done
if [ "$ready" != 1 ]; then
	log "cluster not ready after 30 s; server logs:"
	tail -n 20 "$work"/n*.log >&2
	exit 1
fi
log "3-node JetStream cluster ready on ports $((base_port + 1))-$((base_port + 3)) (pids ${pids[*]})"

cpu_ticks() { # utime+stime of the servers, in clock ticks
	local s=0 p f
	for p in "${pids[@]}"; do
		f=$(sed 's/.*) //' "/proc/$p/stat")
		set -- $f
		s=$((s + ${12} + ${13}))
	done
	echo "$s"
}

# 3. The measured publish run (the stream is created R3, file storage, by --create).
args=(bench js pub "$mode" --create --replicas 3 --storage file --size "$size" --msgs "$msgs" --no-progress)
[ "$mode" = async ] && args+=(--batch "$batch")
log "nats ${args[*]} bench.subject"
c0=$(cpu_ticks)
if ! timeout "$limit" "$cli" -s "$urls" "${args[@]}" bench.subject >"$work/bench.out" 2>&1; then
	log "nats bench failed or ran past ${limit} s:"
	cat "$work/bench.out" >&2
	exit 1
fi
c1=$(cpu_ticks)
cat "$work/bench.out"

# 4. The summary line of `nats bench` (v0.5.0): "NATS JetStream asynchronous publisher stats: 32,575
#    msgs/sec ~ 32 MiB/sec ~ min: ... ~ P99: ..."; with several clients an aggregate "Pub stats: ..." line.
line=$(grep -m1 -E 'Pub stats: *[0-9,.]+ msgs/sec' "$work/bench.out" || grep -m1 -E 'stats: *[0-9,.]+ msgs/sec' "$work/bench.out" || true)
rate=$(printf '%s\n' "$line" | sed -E 's/.*stats: *([0-9,.]+) msgs\/sec.*/\1/' | tr -d ,)
case "$rate" in '' | *[!0-9.]*) log "no 'stats: N msgs/sec' line in the bench output"; exit 1 ;; esac
tck=$(getconf CLK_TCK)
awk -v n="$msgs" -v sz="$size" -v r="$rate" -v c=$((c1 - c0)) -v t="$tck" 'BEGIN {
	printf "nats-bench: result msgs=%d size=%d seconds=%.3f msgs_per_s=%.0f mb_per_s=%.1f server_cpu_s=%.2f\n",
		n, sz, n / r, r, r * sz / 1e6, c / t }'
