package clone

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" //nolint:gosec // git's pack checksum is SHA-1
	"encoding/binary"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// encodePack writes the objects, whole (no deltas), into a pack (format
// version 2) in memory. A round's pack is pushed and then stored in the
// clone as it is, so it is compressed once, and with zlib's fastest level:
// the objects are a few trees and blobs, most of their cost is deflating
// the large trees on the path of each change (apps/ of 500 entries), and
// the remote or the clone inflates them once.
func encodePack(s storer.EncodedObjectStorer, objects []plumbing.Hash) ([]byte, error) {
	var buf bytes.Buffer
	sum := sha1.New() //nolint:gosec // as above
	w := io.MultiWriter(&buf, sum)
	var head [12]byte
	copy(head[:], "PACK")
	binary.BigEndian.PutUint32(head[4:], 2)
	binary.BigEndian.PutUint32(head[8:], uint32(len(objects)))
	w.Write(head[:]) //nolint:errcheck // writes to a buffer and a hash do not fail
	zw, err := zlib.NewWriterLevel(w, zlib.BestSpeed)
	if err != nil {
		return nil, err
	}
	for _, h := range objects {
		o, err := s.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, fmt.Errorf("pack object %s: %w", h, err)
		}
		w.Write(entryHeader(o.Type(), o.Size())) //nolint:errcheck // as above
		rd, err := o.Reader()
		if err != nil {
			return nil, fmt.Errorf("pack object %s: %w", h, err)
		}
		zw.Reset(w)
		_, err = io.Copy(zw, rd)
		if cerr := rd.Close(); err == nil {
			err = cerr
		}
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("pack object %s: %w", h, err)
		}
	}
	buf.Write(sum.Sum(nil))
	return buf.Bytes(), nil
}

// entryHeader is a pack entry's type and inflated size: the type and the
// low four bits of the size in the first byte, then seven bits a byte, the
// high bit saying that another byte follows.
func entryHeader(t plumbing.ObjectType, size int64) []byte {
	b := []byte{byte(t)<<4 | byte(size&0x0f)}
	for size >>= 4; size > 0; size >>= 7 {
		b[len(b)-1] |= 0x80
		b = append(b, byte(size&0x7f))
	}
	return b
}
