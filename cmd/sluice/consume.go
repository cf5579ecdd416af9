package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
)

func runConsume(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice consume TOPIC [--from-beginning] [-n N] [flags]
Prints one record value per line.
flags:
`)
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs)
	fromBeginning := fs.Bool("from-beginning", false, "start at the earliest offset (default: only new records)")
	n := fs.Int64("n", 0, "stop after this many records (0: run until interrupted)")
	fs.Int64Var(n, "num", 0, "same as -n")
	printKey := fs.Bool("print-key", false, "print key<TAB>value")
	idle := fs.Duration("idle-timeout", 0, "stop when no record arrives for this long (0: wait forever)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usagef("consume takes one TOPIC")
	}
	if *n < 0 {
		return usagef("-n must not be negative")
	}
	opts, _, err := cf.options()
	if err != nil {
		return err
	}
	offset := kgo.NewOffset().AtEnd()
	if *fromBeginning {
		offset = kgo.NewOffset().AtStart()
	}
	opts = append(opts, kgo.ConsumeTopics(pos[0]), kgo.ConsumeResetOffset(offset))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	var got int64
	for *n == 0 || got < *n {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if *idle > 0 {
			pctx, cancel = context.WithTimeout(ctx, *idle)
		}
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil // interrupted: a normal way to stop
		}
		if *idle > 0 && errors.Is(pctx.Err(), context.DeadlineExceeded) && fetches.NumRecords() == 0 {
			break
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("%s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		stop := false
		fetches.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			if *printKey {
				out.Write(r.Key)
				out.WriteByte('\t')
			}
			out.Write(r.Value)
			out.WriteByte('\n')
			got++
			if *n > 0 && got >= *n {
				stop = true
			}
		})
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return nil
}
