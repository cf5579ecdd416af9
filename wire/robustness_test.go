package wire

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Systematic damage to every seed request: each prefix, and each byte
// replaced by boundary values. kmsg must reject or accept, never panic.
func TestParseRequestDamagedSeeds(t *testing.T) {
	all := DefaultVersions()
	if err := all.Enable(GroupAPIs()...); err != nil {
		t.Fatal(err)
	}
	check := func(frame []byte) {
		if _, err := all.ParseRequest(frame); errors.Is(err, errDecodePanic) {
			t.Fatalf("kmsg panicked on %x: %v", frame, err)
		}
	}
	for _, seed := range seedRequests() {
		for n := range len(seed) {
			check(seed[:n])
		}
		buf := make([]byte, len(seed))
		for i := range seed {
			for _, b := range []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff} {
				copy(buf, seed)
				buf[i] = b
				check(buf)
			}
		}
	}
}

// TestParseRequestAllocationAmplification measures the worst heap bytes per
// input byte found by planting a huge length at every position of every seed
// followed by zero padding. kmsg bounds every array by the bytes left, but a
// 2-byte wire element can become a 64-byte struct: kmsg v1.15.1 reaches 32x
// (Produce, Fetch, OffsetCommit). The broker must budget request memory with
// that factor in mind; this test fails if a kmsg upgrade makes it worse.
// Run with -v for the per-API figures.
func TestParseRequestAllocationAmplification(t *testing.T) {
	// documentedAmplification is the heap-bytes-per-frame-byte figure that
	// docs/architecture.md states; the half-unit margin absorbs rounding only.
	const documentedAmplification = 32
	const pad = 64 << 10
	all := DefaultVersions()
	if err := all.Enable(GroupAPIs()...); err != nil {
		t.Fatal(err)
	}
	var worst float64
	var worstKey, worstVer int16
	perKey := map[int16]float64{}
	var ms runtime.MemStats
	for _, seed := range seedRequests() {
		for i := 10; i < len(seed); i++ {
			for _, planted := range [][]byte{
				binary.BigEndian.AppendUint32(nil, 1<<20),
				binary.BigEndian.AppendUint16(nil, 0x7fff),
				binary.AppendUvarint(nil, 1<<20),
			} {
				frame := append(append(append([]byte{}, seed[:i]...), planted...), make([]byte, pad)...)
				runtime.ReadMemStats(&ms)
				before := ms.TotalAlloc
				all.ParseRequest(frame)
				runtime.ReadMemStats(&ms)
				r := float64(ms.TotalAlloc-before) / float64(len(frame))
				k := int16(binary.BigEndian.Uint16(seed))
				perKey[k] = max(perKey[k], r)
				if r > worst {
					worst, worstKey, worstVer = r, int16(binary.BigEndian.Uint16(seed)), int16(binary.BigEndian.Uint16(seed[2:]))
				}
			}
		}
	}
	for k, r := range perKey {
		t.Logf("%-22s %.1f", kmsg.NameForKey(k), r)
	}
	t.Logf("worst allocation amplification: %.1f heap bytes per frame byte (%s v%d)", worst, kmsg.NameForKey(worstKey), worstVer)
	if worst > (documentedAmplification+0.5)*allocFactor {
		t.Fatalf("allocation amplification %.1f (%s v%d) above the documented %dx (allocFactor %d)",
			worst, kmsg.NameForKey(worstKey), worstVer, documentedAmplification, allocFactor)
	}
}
