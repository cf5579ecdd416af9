package replica

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The core is pure: its non-test files import only these standard packages (no I/O, no sync, no
// Sluice package) and never read the clock.
func TestCoreIsPure(t *testing.T) {
	allowed := []string{"errors", "fmt", "slices", "time"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); !slices.Contains(allowed, p) {
				t.Errorf("%s imports %s", f, p)
			}
		}
		for _, clock := range []string{"time.Now(", "time.Since(", "time.Until(", "time.After(", "time.NewTimer(", "time.Sleep("} {
			if strings.Contains(string(src), clock) {
				t.Errorf("%s reads the clock (%s)", f, clock)
			}
		}
	}
}
