package testutil

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// SegmentBytes concatenates the segment files (*.log, in name order, which is offset order) of a
// partition directory: the replica's bytes on disk, for comparing replicas.
func SegmentBytes(t testing.TB, dir string) []byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var all []byte
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}
