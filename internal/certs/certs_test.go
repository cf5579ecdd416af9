package certs

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteDevHandshake writes the dev material, then completes a real TLS
// handshake with client-certificate authentication over loopback.
func TestWriteDevHandshake(t *testing.T) {
	f, err := WriteDev(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	if st, err := os.Stat(f.ServerKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("server key mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srvCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, io.LimitReader(c, 5))
		done <- err
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		RootCAs:      pool,
		ServerName:   "localhost",
		Certificates: []tls.Certificate{cliCert},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestServerCoversLoopbackIP checks the certificate verifies for the IP name
// that kcat and the Go clients use when given 127.0.0.1.
func TestServerCoversLoopbackIP(t *testing.T) {
	ca, err := NewAuthority("t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server("s", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.0.0.1"}); err != nil {
		t.Fatalf("verify for 127.0.0.1: %v", err)
	}
	if _, err := ca.Client("c", time.Hour); err != nil {
		t.Fatal(err)
	}
	var nilCA *Authority
	if _, err := nilCA.Server("x", nil, time.Hour); err == nil {
		t.Fatal("nil authority signed a certificate")
	}
}

// TestLoadPool reads the dev CA back into a pool that verifies the server
// certificate, and refuses a missing file and a file with no certificate.
func TestLoadPool(t *testing.T) {
	dir := t.TempDir()
	f, err := WriteDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f != DevFiles(dir) {
		t.Fatalf("WriteDev files = %+v, DevFiles = %+v", f, DevFiles(dir))
	}
	pool, err := LoadPool(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(srv.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Fatalf("verify with loaded pool: %v", err)
	}
	if _, err := LoadPool(filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("LoadPool of a missing file succeeded")
	}
	// A private key is PEM but not a certificate.
	if _, err := LoadPool(f.ServerKey); err == nil || !strings.Contains(err.Error(), f.ServerKey) {
		t.Fatalf("LoadPool of a key file: err = %v; want an error naming the file", err)
	}
}
