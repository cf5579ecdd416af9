package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat. Linux fixes it at 100 on every architecture Go supports
// (sysconf(_SC_CLK_TCK) returns the same constant); reading it would need cgo.
const clockTicksPerSecond = 100

// ErrBadStat reports a /proc/<pid>/stat line that does not parse.
var ErrBadStat = errors.New("bench: malformed /proc stat line")

// ParseStat returns utime+stime from one /proc/<pid>/stat line. The command
// name (field 2) is in parentheses and may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func ParseStat(line []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(line, ')')
	if end < 0 {
		return 0, fmt.Errorf("%w: no ')'", ErrBadStat)
	}
	fields := bytes.Fields(line[end+1:])
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(fields) <= stimeIdx {
		return 0, fmt.Errorf("%w: %d fields after the command name", ErrBadStat, len(fields))
	}
	var ticks uint64
	for _, i := range []int{utimeIdx, stimeIdx} {
		v, err := strconv.ParseUint(string(fields[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: field %d: %w", ErrBadStat, i+3, err)
		}
		ticks += v
	}
	if ticks > uint64(1<<62)/uint64(time.Second) {
		return 0, fmt.Errorf("%w: %d ticks overflow", ErrBadStat, ticks)
	}
	return time.Duration(ticks) * time.Second / clockTicksPerSecond, nil
}

// ProcessCPU returns the user+system CPU time the process pid has used
// (10 ms resolution).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: cpu of pid %d: %w", pid, err)
	}
	return ParseStat(b)
}

// selfCPU returns the CPU time of this process (the benchmark client and the
// in-process raw baselines), from getrusage at microsecond resolution.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
