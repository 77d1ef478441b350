package mdmhttp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/mdm/mdmhttp"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/pki"
)

// countingReader counts the body bytes the server pulled.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func idleReport(udid string, pad int) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>` +
		`<key>Status</key><string>Idle</string><key>UDID</key><string>` + udid + `</string>` +
		`<key>Pad</key><string>` + strings.Repeat("x", pad) + `</string></dict></plist>`)
}

func put(h http.Handler, body io.Reader, size int, sig string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("PUT", "/mdm/connect", body)
	req.ContentLength = int64(size)
	req.Header.Set("Content-Type", mdmhttp.ContentTypeConnect)
	if sig != "" {
		req.Header.Set("Mdm-Signature", sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// A report is refused before its body is read when its identity is
// refused: no signature, a certificate Orchard never issued, or one that
// SCEP issued but no Authenticate bound (the multi-use Configurator
// challenge hands those to anyone).
func TestConnectRefusedBeforeBody(t *testing.T) {
	s := servertest.Start(t)
	unbound := s.NewDevice(t)
	enrolled := s.NewDevice(t)
	s.Enroll(t, enrolled)
	body := idleReport(unbound.UDID, 1<<20)
	unboundSig, err := unbound.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	otherBody := idleReport(enrolled.UDID, 0)
	otherSig, err := enrolled.Sign(otherBody)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, sig string }{
		{"no signature", ""},
		{"unbound certificate", unboundSig},
		{"not CMS", "bm90IGNtcw=="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(body)}
			rec := put(s.Handler(), cr, len(body), tc.sig)
			if rec.Code != http.StatusForbidden {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if cr.n != 0 {
				t.Fatalf("read %d bytes of the body before refusing", cr.n)
			}
		})
	}
	// A bound signer's signature is still checked against the body read.
	if rec := put(s.Handler(), bytes.NewReader(body), len(body), otherSig); rec.Code != http.StatusForbidden {
		t.Fatalf("bound signer, body it did not sign: %d: %s", rec.Code, rec.Body)
	}
}

// 403 bodies are one short line naming the reason; the parser's detail
// (ASN.1 dumps, digests) only goes to the debug log.
func TestForbiddenBodyIsOneLine(t *testing.T) {
	s := servertest.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	body := idleReport(dev.UDID, 0)
	wrong, err := dev.Sign([]byte("another body"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, sig, want string }{
		{"not CMS", "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIB", "device identity refused: bad_signature\n"},
		{"other body", wrong, "device identity refused: bad_signature\n"},
		{"missing", "", "device identity refused: missing\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := put(s.Handler(), bytes.NewReader(body), len(body), tc.sig)
			if rec.Code != http.StatusForbidden || rec.Body.String() != tc.want {
				t.Fatalf("got %d %q, want 403 %q", rec.Code, rec.Body, tc.want)
			}
		})
	}
}

func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// The attack of issue #10: 3 million nested arrays (20 MiB, under the
// report limit) signed by an enrolled device, over real TLS. It used to
// overflow the decoder's stack and kill the process; now it is a 400 and
// the server allocates little more than the body itself.
func TestDeepReportSurvives(t *testing.T) {
	s := servertest.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	// Opening tags only, as many as fit under the limit: the decoder
	// recursed through all of them before finding the document unfinished.
	head := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>` +
		dev.UDID + `</string><key>Deep</key>`
	body := []byte(head + strings.Repeat("<array>", (mdmhttp.MaxReportBody-len(head))/len("<array>")))
	if len(body) > mdmhttp.MaxReportBody {
		t.Fatalf("body of %d bytes is over the report limit", len(body))
	}
	sig, err := dev.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	before := heapAllocs()
	_, err = dev.PutSigned(context.Background(), dev.ServerURL, mdmhttp.ContentTypeConnect, body, sig)
	allocated := heapAllocs() - before
	var se *simdevice.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Fatalf("deep report: %v, want 400", err)
	}
	// The body is read once (20 MiB) and the shape check allocates nothing;
	// decoding even a tenth of it used to take hundreds of megabytes.
	if limit := uint64(len(body)) * 3; allocated > limit {
		t.Fatalf("handling a %d MiB body allocated %d MiB, want under %d MiB", len(body)>>20, allocated>>20, limit>>20)
	}
	// And the server still serves.
	if _, err := dev.Idle(context.Background()); err != nil {
		t.Fatalf("Idle after the deep report: %v", err)
	}
}

// blockingBody hands out the body a chunk at a time; started is closed at
// the first read, which happens only once the handler holds its budget.
type blockingBody struct {
	started chan struct{}
	resume  chan struct{}
	body    []byte
	first   bool
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if !b.first {
		b.first = true
		close(b.started)
		<-b.resume
	}
	if len(b.body) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.body)
	b.body = b.body[n:]
	return n, nil
}

// Large bodies are read under a budget: while one holds all of it, another
// large report waits, then gets 503 with Retry-After without a byte of its
// body read; small ones pass; once the first is done the budget is free.
func TestBodyBudget(t *testing.T) {
	s := servertest.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	box, err := pki.NewSecretBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(s.Store(), box)
	if err != nil {
		t.Fatal(err)
	}
	v, err := identity.NewVerifier(s.CA().Pool(), s.Store())
	if err != nil {
		t.Fatal(err)
	}
	// A budget of one large body; the wait only has to be short.
	h, err := mdmhttp.New(svc, v, mdmhttp.WithBodyBudget(1<<20, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)

	large := idleReport(dev.UDID, 200<<10)
	largeSig, err := dev.Sign(large)
	if err != nil {
		t.Fatal(err)
	}
	small := idleReport(dev.UDID, 0)
	smallSig, err := dev.Sign(small)
	if err != nil {
		t.Fatal(err)
	}

	holder := &blockingBody{started: make(chan struct{}), resume: make(chan struct{}), body: large}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- put(mux, holder, len(large), largeSig) }()
	<-holder.started

	waiter := &countingReader{r: bytes.NewReader(large)}
	rec := put(mux, waiter, len(large), largeSig)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || waiter.n != 0 {
		t.Fatalf("second large body while the budget is held: %d (Retry-After %q, %d bytes read): %s",
			rec.Code, rec.Header().Get("Retry-After"), waiter.n, rec.Body)
	}
	if rec := put(mux, bytes.NewReader(small), len(small), smallSig); rec.Code != http.StatusOK {
		t.Fatalf("small body while the budget is held: %d: %s", rec.Code, rec.Body)
	}
	close(holder.resume)
	if rec := <-done; rec.Code != http.StatusOK {
		t.Fatalf("the body holding the budget: %d: %s", rec.Code, rec.Body)
	}
	if rec := put(mux, bytes.NewReader(large), len(large), largeSig); rec.Code != http.StatusOK {
		t.Fatalf("large body after the budget was released: %d: %s", rec.Code, rec.Body)
	}
	// A body of unknown length is charged the whole limit, capped at the budget.
	if rec := put(mux, bytes.NewReader(large), -1, largeSig); rec.Code != http.StatusOK {
		t.Fatalf("chunked body: %d: %s", rec.Code, rec.Body)
	}
}

// The usual content type is matched without parsing; any other spelling
// of an accepted type still goes through the media-type parser.
func TestConnectContentTypes(t *testing.T) {
	s := servertest.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	body := idleReport(dev.UDID, 0)
	sig, err := dev.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ctype string
		code  int
	}{
		{mdmhttp.ContentTypeConnect, http.StatusOK},
		{"Application/X-Apple-Aspen-MDM", http.StatusOK},
		{mdmhttp.ContentTypeConnect + "; charset=utf-8", http.StatusOK},
		{mdmhttp.ContentTypeCheckin, http.StatusOK},
		{"application/x-apple-aspen-mdm-extra", http.StatusUnsupportedMediaType},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"", http.StatusOK}, // mdmb and other clients send none
	} {
		req := httptest.NewRequest("PUT", "/mdm/connect", bytes.NewReader(body))
		req.Header.Set("Content-Type", tc.ctype)
		req.Header.Set("Mdm-Signature", sig)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("Content-Type %q: %d %s, want %d", tc.ctype, rec.Code, rec.Body, tc.code)
		}
	}
}
