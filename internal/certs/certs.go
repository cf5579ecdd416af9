// Package certs generates throw-away TLS material for local clusters and
// tests: a self-signed CA and leaf certificates it signs. Nothing here is meant
// for production keys; `sluice dev` uses it so a newcomer gets a working TLS
// listener without openssl.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Authority is a CA able to sign leaf certificates.
type Authority struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// Leaf is a signed certificate and its key, PEM-encoded.
type Leaf struct {
	CertPEM []byte
	KeyPEM  []byte
}

// NewAuthority creates a self-signed CA valid for the given duration.
func NewAuthority(commonName string, validFor time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: ca key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Sluice dev"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse ca: %w", err)
	}
	return &Authority{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Server signs a server certificate for the given host names and IP addresses.
func (a *Authority) Server(commonName string, hosts []string, validFor time.Duration) (*Leaf, error) {
	return a.sign(commonName, hosts, validFor, x509.ExtKeyUsageServerAuth)
}

// Client signs a client certificate (for client-certificate authentication).
func (a *Authority) Client(commonName string, validFor time.Duration) (*Leaf, error) {
	return a.sign(commonName, nil, validFor, x509.ExtKeyUsageClientAuth)
}

func (a *Authority) sign(cn string, hosts []string, validFor time.Duration, usage x509.ExtKeyUsage) (*Leaf, error) {
	if a == nil || a.Cert == nil || a.Key == nil {
		return nil, errors.New("certs: nil authority")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: leaf key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Sluice dev"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign %s: %w", cn, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: marshal key: %w", err)
	}
	return &Leaf{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// TLSCertificate returns the leaf as a tls.Certificate.
func (l *Leaf) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(l.CertPEM, l.KeyPEM)
}

// Pool returns a cert pool holding the authority's certificate.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// Files names the PEM files written by WriteDev.
type Files struct {
	CA         string // CA certificate (trust anchor for clients)
	ServerCert string
	ServerKey  string
	ClientCert string // for client-certificate authentication
	ClientKey  string
}

// DevFiles names the files WriteDev writes into dir, without touching the disk.
func DevFiles(dir string) Files {
	return Files{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
}

// LoadPool reads the PEM file at path into a new cert pool. It fails if the
// file cannot be read or holds no PEM certificate.
func LoadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// WriteDev writes a fresh CA, a server certificate for loopback names and a
// client certificate into dir, with private keys readable by the owner only.
func WriteDev(dir string) (Files, error) {
	const validFor = 365 * 24 * time.Hour
	ca, err := NewAuthority("Sluice dev CA", validFor)
	if err != nil {
		return Files{}, err
	}
	srv, err := ca.Server("sluice-broker", []string{"localhost", "127.0.0.1", "::1"}, validFor)
	if err != nil {
		return Files{}, err
	}
	cli, err := ca.Client("sluice-client", validFor)
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("certs: %w", err)
	}
	f := DevFiles(dir)
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.CA, ca.CertPEM, 0o644},
		{f.ServerCert, srv.CertPEM, 0o644},
		{f.ServerKey, srv.KeyPEM, 0o600},
		{f.ClientCert, cli.CertPEM, 0o644},
		{f.ClientKey, cli.KeyPEM, 0o600},
	} {
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return Files{}, fmt.Errorf("certs: %w", err)
		}
	}
	return f, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on Linux; a fixed serial is still a valid certificate.
		return big.NewInt(1)
	}
	return n
}
