package history

import (
	"encoding/binary"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

// TestHashAt finds objects by offset in an index with two fan-out buckets
// and an offset past 2 GiB (kept in the 64-bit table), as git writes it.
func TestHashAt(t *testing.T) {
	name := func(b byte) []byte {
		h := plumbing.Hash{b, 0x11, b}
		return h[:]
	}
	off32 := func(vs ...uint32) []byte {
		var out []byte
		for _, v := range vs {
			out = binary.BigEndian.AppendUint32(out, v)
		}
		return out
	}
	idx := idxfile.NewMemoryIndex()
	idx.Names = [][]byte{append(name(0x01), name(0x02)...), name(0x80)}
	idx.Offset32 = [][]byte{off32(500, 1<<31), off32(12)} // 1<<31: the first 64-bit offset
	idx.Offset64 = binary.BigEndian.AppendUint64(nil, 5<<30)
	p := &pack{idx: idx}
	for off, want := range map[int64][]byte{12: name(0x80), 500: name(0x01), 5 << 30: name(0x02)} {
		h, ok := p.hashAt(off)
		if !ok || h != plumbing.Hash(want) {
			t.Errorf("hashAt(%d) = %s, %v; want %x", off, h, ok, want)
		}
	}
	for _, off := range []int64{0, 13, 499, 1 << 31} {
		if h, ok := p.hashAt(off); ok {
			t.Errorf("hashAt(%d) = %s, want none", off, h)
		}
	}
}
