// Package apiclient calls Orchard's admin API with its bearer key: the one
// client of the CLI, the load generator and the test server, so they all
// send and read a call the same way.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxBody bounds what a call reads back (exports and lists can be large,
// but a broken or hostile server must not exhaust memory).
const maxBody = 64 << 20

// Client calls one server.
type Client struct {
	BaseURL string // e.g. https://localhost:8443; a path that is a whole URL is used as is when BaseURL is ""
	Key     string // bearer key; empty sends no Authorization header
	HTTP    *http.Client
}

// StatusError is an answer outside 2xx, with the server's one-line reason
// when its body had one.
type StatusError struct {
	Method, Path string
	Code         int
	Reason       string // the "error" field of a JSON body, else ""
	Body         []byte
}

func (e *StatusError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s %s: %s (%d)", e.Method, e.Path, e.Reason, e.Code)
	}
	return fmt.Sprintf("%s %s: status %d", e.Method, e.Path, e.Code)
}

// Raw is a body sent as it is (a .mobileconfig upload), not as JSON.
type Raw struct {
	ContentType string
	Body        []byte
}

// Do sends one call, body (when not nil) as JSON or, when it is a Raw, as
// it is, and returns the status and the body of any answer.
func (c *Client) Do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	if body == nil {
		return c.DoRaw(ctx, method, path, "", nil)
	}
	if raw, ok := body.(Raw); ok {
		return c.DoRaw(ctx, method, path, raw.ContentType, raw.Body)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
	}
	return c.DoRaw(ctx, method, path, "application/json", b)
}

// DoRaw is Do with a body already encoded (a CSV upload); ctype "" sends
// no body.
func (c *Client) DoRaw(ctx context.Context, method, path, ctype string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if ctype != "" {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, data, nil
}

// Stream sends a GET and copies a 2xx answer's body to w, of any size (a
// download such as a backup); any other answer is a *StatusError.
func (c *Client) Stream(ctx context.Context, path string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		return 0, err
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, statusError(http.MethodGet, path, resp.StatusCode, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: read answer: %w", path, err)
	}
	return n, nil
}

func statusError(method, path string, code int, data []byte) *StatusError {
	se := &StatusError{Method: method, Path: path, Code: code, Body: data}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil {
		se.Reason = e.Error
	}
	return se
}

// Call is Do that returns the body of a 2xx answer and a *StatusError for
// any other.
func (c *Client) Call(ctx context.Context, method, path string, body any) ([]byte, error) {
	code, data, err := c.Do(ctx, method, path, body)
	return checked(method, path, code, data, err)
}

// CallRaw is Call with a body already encoded, of content type ctype.
func (c *Client) CallRaw(ctx context.Context, method, path, ctype string, body []byte) ([]byte, error) {
	code, data, err := c.DoRaw(ctx, method, path, ctype, body)
	return checked(method, path, code, data, err)
}

func checked(method, path string, code int, data []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if code < 200 || code > 299 {
		return nil, statusError(method, path, code, data)
	}
	return data, nil
}
