package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/mdm"
)

// queuer queues one DeviceInformation command for the given device IDs
// and returns its UUID.
type queuer func(ctx context.Context, ids []string) (string, error)

// deviceQueries are asked of every device in the roundtrip scenario.
var deviceQueries = []string{"DeviceName", "OSVersion", "BuildVersion", "ModelName", "Model", "ProductName",
	"SerialNumber", "UDID", "DeviceCapacity", "AvailableDeviceCapacity", "BatteryLevel", "IsSupervised", "WiFiMAC", "BluetoothMAC"}

// enqueueBatch is how many targets one API call carries: Orchard takes up
// to 100,000; NanoMDM puts the IDs in the URL path, so keep that short.
func enqueueBatch(target string) int {
	if target == targetNanoMDM {
		return 100
	}
	return 10_000
}

func orchardQueue(c *config, hc *http.Client) queuer {
	api := &apiclient.Client{BaseURL: c.Server, Key: c.APIKey, HTTP: hc}
	return func(ctx context.Context, ids []string) (string, error) {
		raw, err := api.Call(ctx, http.MethodPost, "/v1/commands", map[string]any{
			"targets":      ids,
			"request_type": "DeviceInformation",
			"payload":      map[string]any{"Queries": deviceQueries},
		})
		if err != nil {
			return "", err
		}
		var out struct {
			UUID string `json:"command_uuid"`
		}
		if err := json.Unmarshal(raw, &out); err != nil || out.UUID == "" {
			return "", fmt.Errorf("enqueue: no command_uuid in %.200q", raw)
		}
		return out.UUID, nil
	}
}

// nanoQueue uses NanoMDM's PUT /v1/enqueue/<id>,<id>?nopush=1 with a raw
// command plist and basic auth nanomdm:<api key>.
func nanoQueue(c *config, hc *http.Client) queuer {
	return func(ctx context.Context, ids []string) (string, error) {
		uuid := mdm.NewUUID()
		body, err := plist.Marshal(map[string]any{
			"CommandUUID": uuid,
			"Command":     map[string]any{"RequestType": "DeviceInformation", "Queries": deviceQueries},
		})
		if err != nil {
			return "", err
		}
		escaped := make([]string, len(ids))
		for i, id := range ids {
			escaped[i] = url.PathEscape(id)
		}
		u := c.Server + "/v1/enqueue/" + strings.Join(escaped, ",") + "?nopush=1"
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.SetBasicAuth("nanomdm", c.APIKey)
		return uuid, do(hc, req)
	}
}

func do(hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
