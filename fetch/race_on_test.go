//go:build race

package fetch

// The race detector makes sync.Pool drop a quarter of what is Put, so pooled
// scratch is sometimes reallocated: allow a few allocations per call, still
// independent of the number of bytes sent.
const allocSlack = 8
