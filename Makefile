# Sluice build targets. `make test` is exactly what CI runs (.ci/run).
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 10s
BENCHTIME ?= 1s

.PHONY: build run test vet fmt-check unit bench bench-broker scale sim fuzz clean

build:
	$(GO) build -o bin/sluice ./cmd/sluice

# A local cluster with generated TLS material (see docs/quickstart.md).
run: build
	./bin/sluice dev

# vet + gofmt check + race-enabled tests: the CI gate.
test: vet fmt-check unit

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# The process-level suite (cmd/sluice: dev clusters, kill -9, failover timing)
# runs after the others, so it does not share the two cores with them.
E2E := ./cmd/sluice
unit:
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list $(PKGS) | grep -v '/cmd/sluice$$')
	$(GO) test -race -count=1 -timeout 10m $(E2E)

# Benchmarks with same-run raw baselines; see docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) $(PKGS)

# Broker end to end against the machine's raw limits (docs/benchmarks.md, about 2 minutes).
bench-broker: build
	./bin/sluice bench --size 1GiB --rounds 5 --duration 3s --json docs/bench-results.json --svg docs/bench-fetch.svg

# Replication on a three-broker cluster: follower catch-up beside raw sendfile into a file, acks=all
# throughput beside NATS JetStream R3, acks=all latency, kill -9 failover (docs/benchmarks.md, about
# 3 minutes plus the NATS build). NATS_BIN_DIR keeps the nats-server/nats build between runs.
NATS_BIN_DIR ?=
bench-replication: build
	./bin/sluice bench replication --nats-script scripts/nats-bench.sh $(if $(NATS_BIN_DIR),--nats-bin-dir $(NATS_BIN_DIR)) \
	  --json docs/bench-replication.json --svg docs/bench-replication.svg

# NATS JetStream R3 publish alone (builds nats-server and natscli in a throwaway GOBIN).
nats-bench:
	./scripts/nats-bench.sh $(if $(NATS_BIN_DIR),--bin-dir $(NATS_BIN_DIR))

# Metadata scale: 1,000 partitions RF 3, then idle CPU at 10,000 partition-replicas.
scale:
	./scripts/scale-check.sh 30

# The replication simulator's long run (docs/replication.md): 1,000,000 seeded schedules of the pure
# replica.Core with the real meta.Apply and controller.Core, invariants checked after every step;
# prints schedules per second; a failing seed prints its replay command. `make test` runs 10,000.
SIM_SCHEDULES ?= 1000000
sim:
	$(GO) test -count=1 -timeout 0 -run '^TestSimLong$$' -v ./replica -sim.schedules=$(SIM_SCHEDULES)

# A short, bounded fuzz pass over every decoder fuzz target.
fuzz:
	@set -e; for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  dir=$$(dirname $$spec); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$spec | sed 's/^func //'); do \
	    echo "fuzz $$dir $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; \
	done

clean:
	rm -rf bin
