package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.InventoryStore = (*Store)(nil)

// Inventory implements storage.InventoryStore.
func (s *Store) Inventory(ctx context.Context, deviceID string) (*storage.DeviceInventory, error) {
	var inv storage.DeviceInventory
	if err := getDoc(ctx, s.pool, &inv, "SELECT doc FROM inventory WHERE device_id = $1", deviceID); err != nil {
		return nil, err
	}
	return &inv, nil
}

// UpdateInventory implements storage.InventoryStore.
func (s *Store) UpdateInventory(ctx context.Context, deviceID string, fn func(*storage.DeviceInventory) error) (*storage.DeviceInventory, error) {
	if deviceID == "" || fn == nil {
		return nil, errors.New("postgres: update inventory: device ID and function are required")
	}
	var out *storage.DeviceInventory
	err := s.write(ctx, func(tx pgx.Tx) error {
		inv, err := updateInventory(ctx, tx, deviceID, fn)
		out = inv
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func updateInventory(ctx context.Context, tx pgx.Tx, deviceID string, fn func(*storage.DeviceInventory) error) (*storage.DeviceInventory, error) {
	inv := &storage.DeviceInventory{DeviceID: deviceID}
	err := getDoc(ctx, tx, inv, "SELECT doc FROM inventory WHERE device_id = $1 FOR UPDATE", deviceID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if err := fn(inv); errors.Is(err, storage.ErrUnchanged) {
		return inv, nil
	} else if err != nil {
		return nil, err
	}
	inv.DeviceID = deviceID
	return inv, putDoc(ctx, tx, inv, `INSERT INTO inventory (device_id, search, platform, os_version, retired, doc) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (device_id) DO UPDATE SET search = excluded.search, platform = excluded.platform,
			os_version = excluded.os_version, retired = excluded.retired, doc = excluded.doc`, inventoryColumns(inv)...)
}

// ListInventory implements storage.InventoryStore.
func (s *Store) ListInventory(ctx context.Context, after string, limit int) ([]storage.DeviceInventory, error) {
	return listDocs[storage.DeviceInventory](ctx, s.pool, "SELECT doc FROM inventory WHERE device_id > $1 ORDER BY device_id LIMIT $2", after, limitArg(limit))
}

// PutDeviceReport implements storage.InventoryStore.
func (s *Store) PutDeviceReport(ctx context.Context, rep *storage.DeviceReport, fn func(*storage.DeviceInventory) error) error {
	if rep == nil || rep.ChannelID == "" || rep.Kind == "" {
		return errors.New("postgres: put device report: channel and kind are required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		return putDeviceReport(ctx, tx, rep.ChannelID, &storage.ResultEffect{Report: rep, Inventory: fn})
	})
}

// putDeviceReport writes e's report and inventory change for channel.
func putDeviceReport(ctx context.Context, tx pgx.Tx, channel string, e *storage.ResultEffect) error {
	if rep := e.Report; rep != nil {
		if err := putDoc(ctx, tx, rep, `INSERT INTO device_reports (channel, kind, doc) VALUES ($1, $2, $3)
			ON CONFLICT (channel, kind) DO UPDATE SET doc = excluded.doc`, rep.ChannelID, rep.Kind); err != nil {
			return err
		}
	}
	if e.Inventory == nil {
		return nil
	}
	_, err := updateInventory(ctx, tx, channel, e.Inventory)
	return err
}

// DeviceReport implements storage.InventoryStore.
func (s *Store) DeviceReport(ctx context.Context, channel, kind string) (*storage.DeviceReport, error) {
	var rep storage.DeviceReport
	if err := getDoc(ctx, s.pool, &rep, "SELECT doc FROM device_reports WHERE channel = $1 AND kind = $2", channel, kind); err != nil {
		return nil, err
	}
	return &rep, nil
}
