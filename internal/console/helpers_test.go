package console_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/browsertest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/storage"
)

// Passwords of the test admins (12 characters or more).
const (
	ownerPW    = "olga-owner-password"
	helpdeskPW = "hana-helpdesk-password"
)

// start runs a real server with an owner (olga) and a helpdesk admin
// (hana), both made through the admin API with the bootstrap key.
func start(t testing.TB, mutate ...func(*server.Config)) *servertest.Server {
	t.Helper()
	srv := servertest.Start(t, mutate...)
	for _, a := range []struct{ name, role, pw string }{{"olga", "owner", ownerPW}, {"hana", "helpdesk", helpdeskPW}} {
		if st := srv.API(t, "POST", "/v1/admins", map[string]string{"username": a.name, "role": a.role, "password": a.pw}, nil); st != http.StatusCreated {
			t.Fatalf("create admin %s: %d", a.name, st)
		}
	}
	return srv
}

// seed writes n enrolled devices with inventories straight into the
// server's store (enrolling them through SCEP would take minutes): device
// i is "Device %04d", serial "SER%07d", an iPhone on iOS 18.
func seed(t testing.TB, st storage.Store, n int) []string {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 256)
	for i := range n {
		id := fmt.Sprintf("00008030-%016X", 0x5EED0000+i)
		ids[i] = id
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := st.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
				ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, EnrolledAt: now, LastSeen: now,
				Topic: servertest.PushTopic, Token: []byte(fmt.Sprintf("seed-token-%020d", i)), PushMagic: fmt.Sprintf("magic-%d", i), TokenUpdatedAt: now,
				Facts:    &storage.DeviceFacts{UDID: id, SerialNumber: fmt.Sprintf("SER%07d", i), Model: "iPhone14,5", OSVersion: "18.1"},
				CertHash: fmt.Sprintf("seed-cert-%d", i), EnrollmentMethod: "invitation",
			}})
			if err == nil {
				_, err = st.UpdateInventory(ctx, id, func(inv *storage.DeviceInventory) error {
					inv.Platform, inv.DeviceName, inv.SerialNumber, inv.UDID = "iOS", fmt.Sprintf("Device %04d", i), fmt.Sprintf("SER%07d", i), id
					inv.OSVersion, inv.ProductName, inv.ModelName, inv.CreatedAt = "18.1", "iPhone14,5", "iPhone", now
					return nil
				})
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// browserish is an HTTP client that keeps cookies and does not follow
// redirects, trusting the test server's certificate.
type browserish struct {
	t    testing.TB
	c    *http.Client
	base string
}

func newClient(t testing.TB, srv *servertest.Server) *browserish {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserish{t: t, base: srv.AdminURL, c: &http.Client{Jar: jar, Transport: srv.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browserish) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browserish) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	return b.send(path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// postFile posts a multipart form with one file field.
func (b *browserish) postFile(path string, fields map[string]string, field, filename string, data []byte) (int, string) {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile(field, filename)
	fw.Write(data)
	mw.Close()
	return b.send(path, mw.FormDataContentType(), &buf)
}

func (b *browserish) send(path, contentType string, body io.Reader) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, body)
	req.Header.Set("Content-Type", contentType)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// browserSignIn signs user in on the console at base in Chromium.
func browserSignIn(t testing.TB, ctx context.Context, base, user, pw string) {
	t.Helper()
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/sign-in"))
	browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Click(chromedp.CSS("#sign-in")),
	)
}

// csrf reads a page's hidden token.
func (b *browserish) csrf(path string) string {
	b.t.Helper()
	_, body := b.get(path)
	const mark = `name="csrf" value="`
	i := strings.Index(body, mark)
	if i < 0 {
		b.t.Fatalf("no CSRF field on %s: %s", path, body)
	}
	rest := body[i+len(mark):]
	return rest[:strings.IndexByte(rest, '"')]
}

// signIn signs in with a password and answers the status of the post.
func (b *browserish) signIn(user, pw string) (int, string) {
	b.t.Helper()
	return b.post("/console/sign-in", url.Values{"username": {user}, "password": {pw}, "csrf": {b.csrf("/console/sign-in")}})
}

// forgedPost is a form a role must not be able to send.
type forgedPost struct {
	path string
	form url.Values
}

// refused posts each form with the session's CSRF token and fails unless
// the API refused it with 403 for role.
func (b *browserish) refused(role string, posts []forgedPost) {
	b.t.Helper()
	tok := b.csrf("/console/account")
	for _, f := range posts {
		form := url.Values{"csrf": {tok}}
		for k, v := range f.form {
			form[k] = v
		}
		if st, body := b.post(f.path, form); st != http.StatusForbidden || !strings.Contains(body, "forbidden: role "+role) {
			b.t.Errorf("%s forged %s: %d %q, want 403", role, f.path, st, body)
		}
	}
}

// readOnly fails unless every page answers 200 without the controls
// listed for it.
func (b *browserish) readOnly(who string, pages map[string][]string) {
	b.t.Helper()
	for page, absent := range pages {
		st, body := b.get(page)
		if st != http.StatusOK {
			b.t.Errorf("%s %s: %d", who, page, st)
		}
		for _, x := range absent {
			if strings.Contains(body, x) {
				b.t.Errorf("%s sees %s on %s", who, x, page)
			}
		}
	}
}

// enrollTOTP turns on the signed-in admin's second factor on the account
// page and answers its secret and the code that confirmed it (used).
func (b *browserish) enrollTOTP() (secret []byte, code string) {
	b.t.Helper()
	st, page := b.post("/console/account/totp", url.Values{"csrf": {b.csrf("/console/account")}})
	const mark = `<code id="totp-secret">`
	i := strings.Index(page, mark)
	if st != 200 || i < 0 {
		b.t.Fatalf("TOTP start: %d %s", st, page)
	}
	b32 := page[i+len(mark) : i+len(mark)+strings.Index(page[i+len(mark):], "<")]
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(b32)
	if err != nil {
		b.t.Fatal(err)
	}
	code = adminauth.TOTPCode(secret, time.Now(), 6)
	if st, _ := b.post("/console/account/totp/confirm", url.Values{"csrf": {b.csrf("/console/account")}, "code": {code}}); st != http.StatusSeeOther {
		b.t.Fatalf("TOTP confirm: %d", st)
	}
	return secret, code
}
