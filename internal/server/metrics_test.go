package server_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// /metrics reflects what devices and admins did, in Prometheus text format.
func testMetricsEndpoint(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.EnrollOTA(t)
	send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "CertificateList"})
	if _, err := dev.Idle(ctx); err != nil { // delivers ProfileList, leaves one queued
		t.Fatal(err)
	}
	if code := s.API(t, "GET", "/v1/nope", nil, nil); code != 404 {
		t.Fatalf("GET /v1/nope: %d", code)
	}
	resp, err := s.Client.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`orchard_checkins_total{message_type="Authenticate",outcome="ok"} 1`,
		`orchard_checkins_total{message_type="TokenUpdate",outcome="ok"} 1`,
		`orchard_commands_enqueued_total{request_type="ProfileList"} 1`,
		`orchard_commands_enqueued_total{request_type="DeviceInformation"} 1`, // the inventory, queued through the same service
		`orchard_commands_delivered_total{request_type="ProfileList"} 1`,
		`orchard_command_results_total{request_type="DeviceInformation",status="Acknowledged"} 1`,
		`orchard_scep_requests_total{kind="profile",outcome="issued"} 1`,
		`orchard_enrolled_devices 1`,
		`orchard_command_queue_depth 2`,
		`orchard_http_request_duration_seconds_count{code="200",method="PUT",route="PUT /mdm/connect"}`,
		`orchard_http_request_duration_seconds_count{code="200",method="GET",route="GET /v1/enrollment/profile"}`,
		`orchard_http_request_duration_seconds_count{code="404",method="GET",route="unmatched"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, dev.PushMagic) || strings.Contains(text, dev.UDID) {
		t.Error("/metrics leaks a device identifier or secret")
	}
}

// The answers the device gave to the queries Orchard sent at enrollment
// show as its inventory.
func testInventoryAfterEnrollment(t *testing.T, backend servertest.Backend) {
	s := backend.Start(t)
	dev := s.EnrollOTA(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var inv struct {
			SerialNumber string `json:"serial_number"`
			OSVersion    string `json:"os_version"`
			WiFiMAC      string `json:"wifi_mac"`
			Supervised   *bool  `json:"supervised"`
		}
		code := s.API(t, "GET", "/v1/devices/"+dev.UDID+"/inventory", nil, &inv)
		if code == 200 && inv.SerialNumber == dev.SerialNumber && inv.OSVersion == dev.OSVersion &&
			inv.WiFiMAC == dev.Facts()["WiFiMAC"] && inv.Supervised != nil && !*inv.Supervised {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("inventory never showed the device's answers: %d %+v", code, inv)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
