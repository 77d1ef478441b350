package bolt

import (
	"context"
	"errors"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bInventory     = []byte("inventory")      // channel -> DeviceInventory
	bDeviceReports = []byte("device_reports") // channel \x00 kind -> DeviceReport
)

func init() { registerBuckets(string(bInventory), string(bDeviceReports)) }

var _ storage.InventoryStore = (*Store)(nil)

// Inventory implements storage.InventoryStore.
func (s *Store) Inventory(ctx context.Context, deviceID string) (*storage.DeviceInventory, error) {
	var inv storage.DeviceInventory
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bInventory), []byte(deviceID), &inv) })
	if err != nil {
		return nil, err
	}
	return &inv, nil
}

// UpdateInventory implements storage.InventoryStore.
func (s *Store) UpdateInventory(ctx context.Context, deviceID string, fn func(*storage.DeviceInventory) error) (*storage.DeviceInventory, error) {
	if deviceID == "" || fn == nil {
		return nil, errors.New("bolt: update inventory: device ID and function are required")
	}
	var out *storage.DeviceInventory
	err := s.update(func(tx *bolt.Tx) error {
		inv, err := updateInventory(tx, deviceID, fn)
		out = inv
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func updateInventory(tx *bolt.Tx, deviceID string, fn func(*storage.DeviceInventory) error) (*storage.DeviceInventory, error) {
	b := tx.Bucket(bInventory)
	inv := &storage.DeviceInventory{DeviceID: deviceID}
	if err := getJSON(b, []byte(deviceID), inv); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if err := fn(inv); errors.Is(err, storage.ErrUnchanged) {
		return inv, nil
	} else if err != nil {
		return nil, err
	}
	inv.DeviceID = deviceID
	if err := putJSON(b, []byte(deviceID), inv); err != nil {
		return nil, err
	}
	return inv, indexInventory(tx, inv)
}

// ListInventory implements storage.InventoryStore.
func (s *Store) ListInventory(ctx context.Context, after string, limit int) ([]storage.DeviceInventory, error) {
	return listJSON[storage.DeviceInventory](s, bInventory, after, limit)
}

// PutDeviceReport implements storage.InventoryStore.
func (s *Store) PutDeviceReport(ctx context.Context, rep *storage.DeviceReport, fn func(*storage.DeviceInventory) error) error {
	if rep == nil || rep.ChannelID == "" || rep.Kind == "" {
		return errors.New("bolt: put device report: channel and kind are required")
	}
	return s.update(func(tx *bolt.Tx) error {
		return putDeviceReport(tx, rep.ChannelID, &storage.ResultEffect{Report: rep, Inventory: fn})
	})
}

// putDeviceReport writes e's report and inventory change for channel.
func putDeviceReport(tx *bolt.Tx, channel string, e *storage.ResultEffect) error {
	if rep := e.Report; rep != nil {
		if err := putJSON(tx.Bucket(bDeviceReports), key(rep.ChannelID, rep.Kind), rep); err != nil {
			return err
		}
	}
	if e.Inventory == nil {
		return nil
	}
	_, err := updateInventory(tx, channel, e.Inventory)
	return err
}

// DeviceReport implements storage.InventoryStore.
func (s *Store) DeviceReport(ctx context.Context, channel, kind string) (*storage.DeviceReport, error) {
	var rep storage.DeviceReport
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bDeviceReports), key(channel, kind), &rep) })
	if err != nil {
		return nil, err
	}
	return &rep, nil
}
