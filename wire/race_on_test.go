//go:build race

package wire

// allocFactor scales heap-byte bounds: the race detector roughly doubles
// the bytes each allocation reports.
const allocFactor = 2
