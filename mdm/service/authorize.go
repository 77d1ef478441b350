package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/storage"
)

// AuthorizeReport is checked before a command report's body is read or
// decoded: the identity's certificate must be bound to an enrollment (by an
// Authenticate), so a certificate that only went through SCEP cannot make
// Orchard read or parse a large body. That the report names the bound
// device, and an enrolled channel of it, is still checked by Report.
func (s *Service) AuthorizeReport(ctx context.Context, id *identity.Identity) error {
	epoch := s.cache.now()
	if _, ok := s.cache.device(id.Hash); ok {
		return nil
	}
	dev, err := s.store.DeviceForCert(ctx, id.Hash)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: certificate is not bound to an enrollment; Authenticate first", ErrForbidden)
	}
	if err != nil {
		return fmt.Errorf("look up certificate binding: %w", err)
	}
	s.cache.bind(epoch, id.Hash, dev)
	return nil
}
