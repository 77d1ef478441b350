package bolt

import (
	"testing"

	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/storagetest"
)

func TestInventoryConformance(t *testing.T) {
	storagetest.RunInventory(t, func(t *testing.T) storage.InventoryStore { return openScepTestStore(t) })
}
