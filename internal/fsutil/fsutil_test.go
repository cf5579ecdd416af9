package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFileAtomic(dir, "f", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(dir, "f", []byte("two")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil || string(got) != "two" {
		t.Fatalf("got %q, %v; want \"two\"", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f"+TmpExt)); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestWriteFileAtomicMissingDir(t *testing.T) {
	if err := WriteFileAtomic(filepath.Join(t.TempDir(), "absent"), "f", nil); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}
