package clone

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
)

// staged keeps the objects a round writes in memory, in front of the clone's
// storage. Only once the push succeeded are they stored in the clone, as one
// pack: no loose object files, no compression of objects a lost race discards.
type staged struct {
	mem  *memory.ObjectStorage
	base *filesystem.Storage
}

func newStaged(base *filesystem.Storage) *staged {
	return &staged{mem: &memory.NewStorage().ObjectStorage, base: base}
}

var _ storer.EncodedObjectStorer = (*staged)(nil)

func (s *staged) NewEncodedObject() plumbing.EncodedObject { return s.mem.NewEncodedObject() }

func (s *staged) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	return s.mem.SetEncodedObject(o)
}

func (s *staged) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := s.mem.EncodedObject(t, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return s.base.EncodedObject(t, h)
	}
	return o, err
}

func (s *staged) IterEncodedObjects(t plumbing.ObjectType) (storer.EncodedObjectIter, error) {
	return s.base.IterEncodedObjects(t)
}

func (s *staged) HasEncodedObject(h plumbing.Hash) error {
	if s.mem.HasEncodedObject(h) == nil {
		return nil
	}
	return s.base.HasEncodedObject(h)
}

func (s *staged) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if n, err := s.mem.EncodedObjectSize(h); err == nil {
		return n, nil
	}
	return s.base.EncodedObjectSize(h)
}

func (s *staged) AddAlternate(remote string) error { return s.base.AddAlternate(remote) }

// commit stores a pack of staged objects (the one pushed) in the clone.
func (s *staged) commit(pack []byte) error {
	w, err := s.base.PackfileWriter()
	if err != nil {
		return fmt.Errorf("store pushed objects: %w", err)
	}
	_, err = w.Write(pack)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store pushed objects: %w", err)
	}
	return nil
}
