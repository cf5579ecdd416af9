// Command sluice is the Sluice broker and its tools in one binary:
//
//	sluice broker   run one broker (flags or --config FILE)
//	sluice dev      start a local cluster with generated TLS material
//	sluice topic    create | list | describe | delete
//	sluice produce  write records (stdin lines, or --count/--size synthetic)
//	sluice consume  read records (one value per line)
//	sluice cluster  status of brokers, controller and partitions; replace-voter
//	sluice bench    throughput of the fetch paths and produce, with raw baselines
//
// Client commands take --bootstrap host:port,...; without it they read the
// local dev cluster's cluster.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"broker", "run one broker", runBroker},
		{"dev", "start a local cluster (data dir, TLS material, cluster.json)", runDev},
		{"topic", "create | list | describe | delete topics", runTopic},
		{"produce", "produce records to a topic", runProduce},
		{"consume", "consume records from a topic", runConsume},
		{"cluster", "status | replace-voter", runCluster},
		{"bench", "measure fetch and produce throughput against raw baselines", runBench},
		{"version", "print the version", func(context.Context, []string) error { fmt.Println("sluice", version); return nil }},
	}
}

// version is set with -ldflags "-X main.version=..." by release builds.
var version = "dev"

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sluice <command> [arguments]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'sluice <command> -h' for a command's flags.")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, os.Args[2:])
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "sluice %s: %v\n", name, err)
			os.Exit(2)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice %s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "sluice: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }
