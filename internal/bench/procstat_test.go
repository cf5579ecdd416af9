package bench

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want time.Duration
		err  error
	}{
		{
			name: "plain",
			line: "1234 (sluice) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			want: 3250 * time.Millisecond,
		},
		{
			name: "command with spaces and parens",
			line: "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 0 0",
			want: 70 * time.Millisecond,
		},
		{name: "no paren", line: "77 sluice R 1 2 3", err: ErrBadStat},
		{name: "short", line: "77 (x) R 1 2 3", err: ErrBadStat},
		{name: "not a number", line: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 4 0", err: ErrBadStat},
		{name: "empty", line: "", err: ErrBadStat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.line))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("ParseStat(%q) error = %v, want %v", tc.line, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseStat(%q) = %v, %v; want %v", tc.line, got, err, tc.want)
			}
		})
	}
}

func TestProcessCPUSelf(t *testing.T) {
	// Burn some CPU so the 10 ms ticks move; bounded by count and time.
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	x := uint64(1)
	for i := 0; i < 1e9 && time.Now().Before(deadline); i++ {
		x = x*6364136223846793005 + 1442695040888963407
		if i%1e6 == 0 {
			if now, _ := ProcessCPU(os.Getpid()); now > before {
				break
			}
		}
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU did not advance: %v -> %v (x=%d)", before, after, x)
	}
	if s := selfCPU(); s < after-50*time.Millisecond {
		t.Fatalf("getrusage %v well below /proc %v", s, after)
	}
}

func TestProcessCPUMissing(t *testing.T) {
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Fatal("ProcessCPU of a pid that cannot exist succeeded")
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1GiB", 1 << 30, true},
		{"256MiB", 256 << 20, true},
		{"64k", 64 << 10, true},
		{"1GB", 1e9, true},
		{"500 MB", 500e6, true},
		{"4096", 4096, true},
		{"1.5GiB", 3 << 29, true},
		{"0", 0, true},
		{"", 0, false},
		{"GiB", 0, false},
		{"1XB", 0, false},
		{"-1MiB", 0, false},
		{"99999999TB", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if tc.ok != (err == nil) || (tc.ok && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadSize) {
			t.Errorf("ParseSize(%q) error %v does not wrap ErrBadSize", tc.in, err)
		}
	}
	if got := FormatBytes(1 << 30); got != "1GiB" {
		t.Errorf("FormatBytes(1GiB) = %q", got)
	}
}
