package mdmhttp_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// signedRequest builds a connect request with a precomputed Mdm-Signature,
// so the benchmark measures the server (verification included), not the
// simulated device's signing.
type signedBody struct {
	body []byte
	sig  string
}

func sign(b *testing.B, dev *simdevice.Device, msg map[string]any) signedBody {
	body, err := plist.Marshal(msg)
	if err != nil {
		b.Fatal(err)
	}
	sig, err := dev.Sign(body)
	if err != nil {
		b.Fatal(err)
	}
	return signedBody{body, sig}
}

func serve(b *testing.B, h http.Handler, sb signedBody) *httptest.ResponseRecorder {
	req := httptest.NewRequest("PUT", "/mdm/connect", bytes.NewReader(sb.body))
	req.Header.Set("Content-Type", "application/x-apple-aspen-mdm")
	req.Header.Set("Mdm-Signature", sb.sig)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec
}

// measureCPU starts counting the process's CPU time; the returned func
// reports it per op as cpu-ns/op. On a shared machine wall time (ns/op)
// mostly measures the neighbours; CPU time is what a request costs. It
// counts every goroutine (group commit, GC), not only the handler's.
func measureCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		if end, ok2 := processCPU(); ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func enrolled(b *testing.B) (*servertest.Server, *simdevice.Device) {
	s := servertest.Start(b)
	dev := s.NewDevice(b)
	s.Enroll(b, dev)
	return s, dev
}

// BenchmarkIdleConnect: an enrolled device connects with Idle and an empty
// queue, through the real handler chain with signature verification and a
// real bbolt file.
func BenchmarkIdleConnect(b *testing.B) {
	s, dev := enrolled(b)
	idle := sign(b, dev, map[string]any{"UDID": dev.UDID, "Status": "Idle"})
	h := s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	defer measureCPU(b)()
	for range b.N {
		if rec := serve(b, h, idle); rec.Body.Len() != 0 {
			b.Fatal("unexpected command")
		}
	}
}

// BenchmarkCommandRoundTrip: per iteration, the device connects, receives
// a queued command and acknowledges it (two requests, one durable write).
func BenchmarkCommandRoundTrip(b *testing.B) {
	roundTrip(b, mdm.CommandPayload{"RequestType": "ProfileList"}, map[string]any{"ProfileList": []any{}})
}

// BenchmarkCommandRoundTripDeviceInformation is the round trip make bench
// measures: DeviceInformation with the queries orchard-load asks, answered
// with QueryResponses, so the inventory update from the answer is in it.
func BenchmarkCommandRoundTripDeviceInformation(b *testing.B) {
	roundTrip(b, mdm.CommandPayload{"RequestType": "DeviceInformation", "Queries": []any{"DeviceName", "OSVersion",
		"BuildVersion", "ModelName", "Model", "ProductName", "SerialNumber", "UDID", "DeviceCapacity",
		"AvailableDeviceCapacity", "BatteryLevel", "IsSupervised", "WiFiMAC", "BluetoothMAC"}}, nil)
}

// roundTrip queues b.N commands of payload and, per iteration, has the
// device connect with Idle, receive the next one and acknowledge it with
// answer, or (nil) with what the simulated device answers.
func roundTrip(b *testing.B, payload mdm.CommandPayload, answer map[string]any) {
	s, dev := enrolled(b)
	ctx := context.Background()
	rt := payload["RequestType"].(string)
	acks := make([]signedBody, b.N)
	for i := range b.N {
		uuid := fmt.Sprintf("BENCH-%08d", i)
		raw, err := mdm.EncodeCommand(uuid, payload)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Store().Enqueue(ctx, &storage.Command{UUID: uuid, RequestType: rt, Raw: raw, CreatedAt: time.Now()}, []string{dev.UDID}); err != nil {
			b.Fatal(err)
		}
		status, extra := "Acknowledged", answer
		if answer == nil {
			status, extra = dev.Answer(&simdevice.Command{UUID: uuid, RequestType: rt, Payload: payload})
		}
		msg := map[string]any{"UDID": dev.UDID, "Status": status, "CommandUUID": uuid}
		maps.Copy(msg, extra)
		acks[i] = sign(b, dev, msg)
	}
	idle := sign(b, dev, map[string]any{"UDID": dev.UDID, "Status": "Idle"})
	h := s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	defer measureCPU(b)()
	for i := range b.N {
		if rec := serve(b, h, idle); rec.Body.Len() == 0 {
			b.Fatal("no command offered")
		}
		serve(b, h, acks[i])
	}
}

// BenchmarkIdleConnectParallel measures concurrent devices against one
// server, where group commit and the verifier cache matter.
func BenchmarkIdleConnectParallel(b *testing.B) {
	s := servertest.Start(b)
	const devices = 64
	bodies := make([]signedBody, devices)
	for i := range devices {
		dev := s.NewDevice(b)
		s.Enroll(b, dev)
		bodies[i] = sign(b, dev, map[string]any{"UDID": dev.UDID, "Status": "Idle"})
	}
	h := s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	defer measureCPU(b)()
	var next int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next) % devices
		next++
		for pb.Next() {
			serve(b, h, bodies[i%devices])
			i++
		}
	})
}
