package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadSize reports a size string ParseSize does not accept.
var ErrBadSize = errors.New("bench: bad size")

// ParseSize reads a byte count such as "1GiB", "256MiB", "64KiB", "1GB",
// "500MB", "4096" or "1.5GiB". Binary (KiB, MiB, GiB; also K, M, G) and
// decimal (KB, MB, GB) suffixes are case-insensitive.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, suffix := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[suffix]
	if mult == 0 {
		return 0, fmt.Errorf("%w: %q: unknown unit %q", ErrBadSize, s, suffix)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: %q", ErrBadSize, s)
	}
	n := v * mult
	if n >= 1<<62 {
		return 0, fmt.Errorf("%w: %q too large", ErrBadSize, s)
	}
	return int64(n), nil
}

// FormatBytes renders n with a binary unit, for messages.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.2fGiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
