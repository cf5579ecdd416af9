package segment

import (
	"os/exec"
	"strings"
	"testing"
)

// segment sits at the bottom of the dependency graph: no Sluice package,
// and no net (its ranges go to sendfile through the caller).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net" || (strings.HasPrefix(dep, "github.com/sluice-io/sluice/") && dep != "github.com/sluice-io/sluice/segment") {
			t.Errorf("segment depends on %s", dep)
		}
	}
}
