package history

import (
	"cmp"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
)

// Object types as a pack file's object headers number them.
const (
	packOFSDelta = 6
	packREFDelta = 7
)

// maxObjectSize bounds the object a header may announce: the trees and
// commits the walk reads are far smaller, and a forged header must not make
// it allocate gigabytes.
const maxObjectSize = 1 << 28

// errTooLarge is returned for an object larger than maxObjectSize.
var errTooLarge = errors.New("object too large")

// errCorruptPack is returned for an object that cannot be read as a pack
// file's object.
var errCorruptPack = errors.New("corrupt pack object")

// pack is one pack file of the repository, read directly: its index, and
// the file through a window of the last bytes read, since the objects of
// consecutive commits lie close together.
type pack struct {
	idx    *idxfile.MemoryIndex
	file   billy.File
	window []byte // of the file, from start
	start  int64
	pos    int64 // where Read and ReadByte read next
	zr     io.ReadCloser
	// byOffset lists the pack's objects by offset, made on the first
	// offset delta (hashAt): go-git's own reverse index (FindHash) is a
	// map of every object, 40 MB at 700,000 objects, most of the walk's
	// live memory on a long history; this is 16 bytes an object.
	byOffset []offsetEntry
}

// offsetEntry is an object's offset in the pack and where its name is in
// the index: bucket<<24 | position in that fan-out bucket.
type offsetEntry struct {
	off int64
	at  uint32
}

// openPacks opens the pack files of the repository whose git directory is
// fs. The walker reads trees and commits from them itself rather than
// through go-git's EncodedObject, which hashes every object it resolves
// from a delta to cache it and reopens the pack file for every tree over
// 16 KiB (a folder of a few hundred projects), and whose pack scanner
// hashes every byte it reads: that made reading a history several times
// slower than git. go-git's DeltaObject looks for a loose object first, at
// a few system calls per object.
func openPacks(fs billy.Filesystem) (_ []*pack, err error) {
	dg := dotgit.New(fs)
	hashes, err := dg.ObjectPacks()
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	var packs []*pack
	defer func() {
		if err != nil {
			err = errors.Join(err, closePacks(packs))
		}
	}()
	for _, h := range hashes {
		idx := idxfile.NewMemoryIndex()
		f, err := dg.ObjectPackIdx(h)
		if err != nil {
			return nil, fmt.Errorf("open pack index %s: %w", h, err)
		}
		err = errors.Join(idxfile.NewDecoder(f).Decode(idx), f.Close())
		if err != nil {
			return nil, fmt.Errorf("read pack index %s: %w", h, err)
		}
		if f, err = dg.ObjectPack(h); err != nil {
			return nil, fmt.Errorf("open pack %s: %w", h, err)
		}
		packs = append(packs, &pack{idx: idx, file: f, window: make([]byte, 0, 4<<10)})
	}
	return packs, nil
}

func closePacks(packs []*pack) error {
	var errs []error
	for _, p := range packs {
		errs = append(errs, p.file.Close())
	}
	return errors.Join(errs...)
}

// read reads the object at off: its pack type and inflated content, and for
// a delta, the hash of its base (zero otherwise).
func (p *pack) read(off int64) (plumbing.ObjectType, []byte, plumbing.Hash, error) {
	var base plumbing.Hash
	p.pos = off
	b, err := p.ReadByte()
	if err != nil {
		return 0, nil, base, err
	}
	typ, size := plumbing.ObjectType(b>>4&7), int64(b&15)
	for shift := 4; b&0x80 != 0; shift += 7 {
		if b, err = p.ReadByte(); err != nil || shift > 56 {
			return 0, nil, base, errors.Join(errCorruptPack, err)
		}
		size |= int64(b&0x7f) << shift
	}
	switch typ {
	case packOFSDelta:
		if base, err = p.ofsBase(off); err != nil {
			return 0, nil, base, err
		}
	case packREFDelta:
		if _, err := io.ReadFull(p, base[:]); err != nil {
			return 0, nil, base, errors.Join(errCorruptPack, err)
		}
	}
	if size > maxObjectSize {
		return 0, nil, base, fmt.Errorf("%w: %d bytes", errTooLarge, size)
	}
	data, err := p.inflate(size)
	return typ, data, base, err
}

// ofsBase reads an offset delta's base offset, relative to the delta's own
// at off, and returns the base's hash.
func (p *pack) ofsBase(off int64) (plumbing.Hash, error) {
	b, err := p.ReadByte()
	rel := int64(b & 0x7f)
	for err == nil && b&0x80 != 0 && rel < off {
		if b, err = p.ReadByte(); err == nil {
			rel = (rel+1)<<7 | int64(b&0x7f)
		}
	}
	if err != nil || rel <= 0 || rel > off {
		return plumbing.ZeroHash, errors.Join(errCorruptPack, err)
	}
	h, ok := p.hashAt(off - rel)
	if !ok {
		return h, fmt.Errorf("%w: no object at offset %d", errCorruptPack, off-rel)
	}
	return h, nil
}

// hashAt returns the name of the object at off, by a binary search of
// byOffset.
func (p *pack) hashAt(off int64) (plumbing.Hash, bool) {
	if p.byOffset == nil {
		p.byOffset = offsetsOf(p.idx)
	}
	i, ok := slices.BinarySearchFunc(p.byOffset, off, func(e offsetEntry, off int64) int { return cmp.Compare(e.off, off) })
	if !ok {
		return plumbing.ZeroHash, false
	}
	at := p.byOffset[i].at
	var h plumbing.Hash
	k, j := at>>24, int(at&(1<<24-1))
	copy(h[:], p.idx.Names[k][j*hashSize:(j+1)*hashSize])
	return h, true
}

// hashSize is the length of an object name in a version-2 index.
const hashSize = 20

// offsetsOf lists the objects of idx by offset. An offset with its top bit
// set is an index into the 64-bit offsets, as in git's index format.
func offsetsOf(idx *idxfile.MemoryIndex) []offsetEntry {
	var out []offsetEntry
	for k := range idx.Offset32 {
		offs := idx.Offset32[k]
		for j := 0; j+4 <= len(offs); j += 4 {
			off := int64(binary.BigEndian.Uint32(offs[j:]))
			if off&(1<<31) != 0 {
				at := 8 * (off &^ (1 << 31))
				if at+8 > int64(len(idx.Offset64)) {
					continue // a malformed index: that object is not found
				}
				off = int64(binary.BigEndian.Uint64(idx.Offset64[at:]))
			}
			out = append(out, offsetEntry{off: off, at: uint32(k)<<24 | uint32(j/4)})
		}
	}
	slices.SortFunc(out, func(a, b offsetEntry) int { return cmp.Compare(a.off, b.off) })
	return out
}

// inflate reads size bytes of zlib data at the read position.
func (p *pack) inflate(size int64) ([]byte, error) {
	var err error
	if p.zr == nil {
		p.zr, err = zlib.NewReader(p)
	} else {
		err = p.zr.(zlib.Resetter).Reset(p, nil)
	}
	if err != nil {
		return nil, errors.Join(errCorruptPack, err)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(p.zr, data); err != nil {
		return nil, errors.Join(errCorruptPack, err)
	}
	return data, nil
}

// Read reads the file from the read position, through the window.
func (p *pack) Read(b []byte) (int, error) {
	if err := p.fill(); err != nil {
		return 0, err
	}
	n := copy(b, p.window[p.pos-p.start:])
	p.pos += int64(n)
	return n, nil
}

// ReadByte reads one byte at the read position; zlib reads through it
// rather than through a bufio.Reader of its own.
func (p *pack) ReadByte() (byte, error) {
	if err := p.fill(); err != nil {
		return 0, err
	}
	b := p.window[p.pos-p.start]
	p.pos++
	return b, nil
}

// fill makes the window hold the byte at the read position.
func (p *pack) fill() error {
	if p.pos >= p.start && p.pos < p.start+int64(len(p.window)) {
		return nil
	}
	n, err := p.file.ReadAt(p.window[:cap(p.window)], p.pos)
	p.window, p.start = p.window[:n], p.pos
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}

var _ io.ByteReader = (*pack)(nil)
