package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// parseInterleaved parses flags that may appear before, between or after
// positional arguments (`sluice topic create NAME --partitions 3`), the way
// rpk and kcat users expect. "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag.Parse consumed a literal "--" if it was what stopped it.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// applyConfigFile sets flags from a file of `name = value` lines (# starts a
// comment). Names are the flag names without dashes; flags given on the
// command line win because they are parsed afterwards.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	return applyConfig(fs, f, path)
}

func applyConfig(fs *flag.FlagSet, r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want name = value, got %q", name, line, text)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "config" {
			return fmt.Errorf("%s:%d: a config file cannot name another", name, line)
		}
		if fs.Lookup(k) == nil {
			return fmt.Errorf("%s:%d: unknown setting %q", name, line, k)
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", name, line, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// configFileArg finds --config/-config in args without parsing the rest.
func configFileArg(args []string) (string, error) {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"--config", "-config"} {
			if a == p {
				if i+1 >= len(args) {
					return "", errors.New("--config needs a file name")
				}
				return args[i+1], nil
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, nil
			}
		}
	}
	return "", nil
}
