package link

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Secret file limits.
const (
	// MaxSecretFileBytes bounds how much of a secret file is read.
	MaxSecretFileBytes = 4096
	// minEntropyBits is the strength a cluster secret must have.
	minEntropyBits = 256
	// minDistinctBytes rejects degenerate secrets such as "aaaa…" that pass
	// the length rule but carry almost no entropy.
	minDistinctBytes = 8
)

var (
	// ErrWeakSecret reports a secret too short (or too repetitive) to hold
	// 256 bits of entropy.
	ErrWeakSecret = errors.New("link: cluster secret too weak")
	// ErrSecretPermissions reports a secret file that group or others may
	// read or write.
	ErrSecretPermissions = errors.New("link: cluster secret file is accessible by group or others")
	// ErrSecretTooLarge reports a secret file above MaxSecretFileBytes.
	ErrSecretTooLarge = errors.New("link: cluster secret file too large")
)

// LoadSecret reads the cluster secret from path.
//
// The file must not be accessible by group or others (mode 0600 or 0400), its
// content is trimmed of surrounding whitespace, and what remains is the secret
// byte for byte (it is not hex-decoded: every broker loads the same file the
// same way). The secret must carry at least 256 bits judged by its alphabet:
// 64 characters if all hexadecimal, 43 if all base64/base64url, otherwise 32
// bytes; and it must use at least 8 distinct byte values.
func LoadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("link: open secret: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("link: stat secret %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("link: secret %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o, want 0600 (chmod 600 %s)", ErrSecretPermissions, path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, MaxSecretFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("link: read secret %s: %w", path, err)
	}
	if len(raw) > MaxSecretFileBytes {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrSecretTooLarge, path, MaxSecretFileBytes)
	}
	secret := bytes.TrimSpace(raw)
	if err := CheckSecret(secret); err != nil {
		return nil, fmt.Errorf("secret %s: %w", path, err)
	}
	return secret, nil
}

// CheckSecret applies LoadSecret's strength rules to an in-memory secret.
func CheckSecret(secret []byte) error {
	bitsPerByte := 8
	switch {
	case len(secret) > 0 && allIn(secret, isHex):
		bitsPerByte = 4
	case len(secret) > 0 && allIn(secret, isBase64):
		bitsPerByte = 6
	}
	need := (minEntropyBits + bitsPerByte - 1) / bitsPerByte
	if len(secret) < need {
		return fmt.Errorf("%w: %d bytes at %d bits each, need at least %d", ErrWeakSecret, len(secret), bitsPerByte, need)
	}
	var seen [256]bool
	distinct := 0
	for _, c := range secret {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
	}
	if distinct < minDistinctBytes {
		return fmt.Errorf("%w: only %d distinct byte values", ErrWeakSecret, distinct)
	}
	return nil
}

// GenerateSecretFile writes a fresh secret (32 random bytes as 64 hex
// characters and a newline) to path with mode 0600 and returns the secret as
// LoadSecret would. It refuses to overwrite an existing file (the error wraps
// fs.ErrExist). The file and its directory are fsynced.
func GenerateSecretFile(path string) ([]byte, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("link: generate secret: %w", err)
	}
	text := make([]byte, hex.EncodedLen(len(key)), hex.EncodedLen(len(key))+1)
	hex.Encode(text, key[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("link: create secret file: %w", err)
	}
	_, werr := f.Write(append(text, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("link: write secret file %s: %w", path, werr)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // best effort: the secret can be regenerated before first use
		_ = d.Close()
	}
	return text, nil
}

func allIn(b []byte, ok func(byte) bool) bool {
	for _, c := range b {
		if !ok(c) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isBase64(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
		c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}
