//go:build !race

package wire

// allocFactor scales heap-byte bounds; see race_on_test.go.
const allocFactor = 1
