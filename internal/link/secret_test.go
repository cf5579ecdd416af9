package link

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask may have trimmed it
		t.Fatal(err)
	}
	return p
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadSecret(t *testing.T) {
	hex64 := hex.EncodeToString(randBytes(t, 32))
	b64 := base64.RawURLEncoding.EncodeToString(randBytes(t, 32)) // 43 chars
	raw := randBytes(t, 32)
	for raw[0] <= ' ' || raw[31] <= ' ' { // keep the length stable under trimming
		raw = randBytes(t, 32)
	}
	tests := []struct {
		name    string
		data    []byte
		mode    os.FileMode
		want    []byte
		wantErr error
	}{
		{"hex64 with newline", []byte(hex64 + "\n"), 0o600, []byte(hex64), nil},
		{"hex64 read-only", []byte("  " + hex64 + "\r\n"), 0o400, []byte(hex64), nil},
		{"base64 43", []byte(b64), 0o600, []byte(b64), nil},
		{"raw 32 bytes", raw, 0o600, raw, nil},
		{"hex 63 chars", []byte(hex64[:63]), 0o600, nil, ErrWeakSecret},
		{"base64 42 chars", []byte(b64[:42]), 0o600, nil, ErrWeakSecret},
		{"raw 31 bytes", raw[:31], 0o600, nil, ErrWeakSecret},
		{"repetitive", []byte(strings.Repeat("ab", 40)), 0o600, nil, ErrWeakSecret},
		{"empty", []byte("\n"), 0o600, nil, ErrWeakSecret},
		{"group readable", []byte(hex64), 0o640, nil, ErrSecretPermissions},
		{"world readable", []byte(hex64), 0o604, nil, ErrSecretPermissions},
		{"too large", bytes.Repeat([]byte(hex64), 100), 0o600, nil, ErrSecretTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.data, tc.mode)
			got, err := LoadSecret(p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("LoadSecret = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("LoadSecret = %q, want %q", got, tc.want)
			}
			if tc.wantErr == ErrSecretPermissions && !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("permission error %q does not say how to fix it", err)
			}
		})
	}
}

func TestLoadSecretMissing(t *testing.T) {
	_, err := LoadSecret(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadSecret(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestGenerateSecretFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cluster.secret")
	gen, err := GenerateSecretFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %#o, want 0600", st.Mode().Perm())
	}
	loaded, err := LoadSecret(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gen, loaded) || len(loaded) != 64 {
		t.Fatalf("generated %q, loaded %q", gen, loaded)
	}
	if _, err := GenerateSecretFile(p); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second GenerateSecretFile = %v, want fs.ErrExist", err)
	}
	again, err := LoadSecret(p)
	if err != nil || !bytes.Equal(again, loaded) {
		t.Fatalf("secret changed after refused overwrite: %q, %v", again, err)
	}
}
