// Package scepclient is a small SCEP client, as an Apple device speaks it:
// GetCACert, then a PKCSReq with a challenge, or a RenewalReq signed with
// the current identity. Tests and the device simulator use it.
package scepclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"time"

	scep "github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"
)

// Client talks to one SCEP URL.
type Client struct {
	url string
	hc  *http.Client
	// UseGET sends PKIOperation as GET ?message= instead of POST.
	UseGET bool
}

// New returns a client for scepURL (e.g. https://mdm.example.com/scep).
func New(scepURL string, hc *http.Client) (*Client, error) {
	if _, err := url.Parse(scepURL); err != nil || scepURL == "" {
		return nil, fmt.Errorf("scepclient: bad URL %q", scepURL)
	}
	if hc == nil {
		return nil, errors.New("scepclient: an HTTP client is required")
	}
	return &Client{url: scepURL, hc: hc}, nil
}

// FailError is a SCEP failure answer (pkiStatus FAILURE).
type FailError struct{ Info scep.FailInfo }

func (e *FailError) Error() string { return "scep failure, failInfo " + string(e.Info) }

// CACert fetches the CA certificate (GetCACert).
func (c *Client) CACert(ctx context.Context) (*x509.Certificate, error) {
	body, err := c.get(ctx, "GetCACert", "")
	if err != nil {
		return nil, err
	}
	if cert, err := x509.ParseCertificate(body); err == nil {
		return cert, nil
	}
	certs, err := scep.CACerts(body) // a chain comes as degenerate PKCS#7
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("scepclient: GetCACert answer is not a certificate")
	}
	return certs[0], nil
}

// Enroll does GetCACert and a PKCSReq for key with the challenge.
func (c *Client) Enroll(ctx context.Context, key *rsa.PrivateKey, subject pkix.Name, challenge string) (*x509.Certificate, error) {
	ca, err := c.CACert(ctx)
	if err != nil {
		return nil, err
	}
	csr, err := NewCSR(key, subject, challenge)
	if err != nil {
		return nil, err
	}
	signer, err := SelfSigned(key, subject)
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, ca, scep.PKCSReq, csr, signer, key)
}

// Renew does GetCACert and a RenewalReq for newKey, signed with the
// current certificate and its key.
func (c *Client) Renew(ctx context.Context, newKey *rsa.PrivateKey, subject pkix.Name, cur *x509.Certificate, curKey *rsa.PrivateKey) (*x509.Certificate, error) {
	ca, err := c.CACert(ctx)
	if err != nil {
		return nil, err
	}
	csr, err := NewCSR(newKey, subject, "")
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, ca, scep.RenewalReq, csr, cur, curKey)
}

// NewCSR returns a DER CSR for key, with a challengePassword attribute
// when challenge is not empty.
func NewCSR(key crypto.Signer, subject pkix.Name, challenge string, tweak ...func(*x509.CertificateRequest)) ([]byte, error) {
	tmpl := &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: subject},
		ChallengePassword:  challenge,
	}
	for _, t := range tweak {
		t(&tmpl.CertificateRequest)
	}
	return x509util.CreateCertificateRequest(rand.Reader, tmpl, key)
}

// SelfSigned returns the throwaway certificate a device signs its first
// request with.
func SelfSigned(key crypto.Signer, subject pkix.Name) (*x509.Certificate, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// BuildMessage returns a signed, encrypted SCEP request of any type.
func BuildMessage(ca *x509.Certificate, typ scep.MessageType, csrDER []byte, signer *x509.Certificate, signerKey crypto.PrivateKey) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, err
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{
		MessageType: typ, Recipients: []*x509.Certificate{ca}, SignerCert: signer, SignerKey: signerKey,
	})
	if err != nil {
		return nil, err
	}
	return msg.Raw, nil
}

// Do sends one request and returns the issued certificate, or a
// *FailError when the server refused.
func (c *Client) Do(ctx context.Context, ca *x509.Certificate, typ scep.MessageType, csrDER []byte, signer *x509.Certificate, signerKey *rsa.PrivateKey) (*x509.Certificate, error) {
	raw, err := BuildMessage(ca, typ, csrDER, signer, signerKey)
	if err != nil {
		return nil, err
	}
	body, err := c.Send(ctx, raw)
	if err != nil {
		return nil, err
	}
	return ParseReply(body, ca, signer, signerKey)
}

// Send posts a raw PKI message (or GETs it, with UseGET) and returns the body.
func (c *Client) Send(ctx context.Context, raw []byte) ([]byte, error) {
	if c.UseGET {
		return c.get(ctx, "PKIOperation", base64.StdEncoding.EncodeToString(raw))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"?operation=PKIOperation", bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-pki-message")
	return c.do(req)
}

// ParseReply verifies a CertRep signed by ca and decrypts the certificate.
func ParseReply(body []byte, ca, signer *x509.Certificate, signerKey *rsa.PrivateKey) (*x509.Certificate, error) {
	msg, err := scep.ParsePKIMessage(body, scep.WithCACerts([]*x509.Certificate{ca}))
	if err != nil {
		return nil, fmt.Errorf("scepclient: reply: %w", err)
	}
	if msg.MessageType != scep.CertRep || msg.CertRepMessage == nil {
		return nil, errors.New("scepclient: reply is not a CertRep")
	}
	switch msg.PKIStatus {
	case scep.FAILURE:
		return nil, &FailError{Info: msg.FailInfo}
	case scep.SUCCESS:
	default:
		return nil, fmt.Errorf("scepclient: pkiStatus %s", msg.PKIStatus)
	}
	if err := msg.DecryptPKIEnvelope(signer, signerKey); err != nil {
		return nil, fmt.Errorf("scepclient: decrypt reply: %w", err)
	}
	return msg.CertRepMessage.Certificate, nil
}

func (c *Client) get(ctx context.Context, op, message string) ([]byte, error) {
	q := url.Values{"operation": {op}}
	if message != "" {
		q.Set("message", message)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	return c.do(req)
}

func (c *Client) do(req *http.Request) ([]byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(body))}
	}
	return body, nil
}

// HTTPError is a non-200 answer.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("scep: HTTP %d: %s", e.Status, e.Body) }
