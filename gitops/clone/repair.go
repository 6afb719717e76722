package clone

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // git's own object and index checksums
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// repairPacks removes what a process killed while writing a pack leaves in
// objects/pack, before go-git opens the clone:
//
//   - go-git writes a pack to tmp_pack_*, then its index pack-X.idx in
//     place, then renames the pack to pack-X.pack. A partial pack-X.idx
//     without its pack would be kept as it is when the same pack X is
//     received again (go-git skips an index that exists), leaving a pack
//     whose objects cannot be found after the next restart.
//   - An index whose checksum does not match its content (a crash of the
//     machine before the page cache reached the disk) is as bad.
//
// Temporary packs and unmatched or damaged indexes are removed, with their
// packs. It reports whether a pack was removed: the refs may then name
// objects the clone no longer has, and the caller fetches afresh.
func repairPacks(dir string) (removedPack bool, err error) {
	packDir := filepath.Join(dir, "objects", "pack")
	entries, err := os.ReadDir(packDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("repair clone: %w", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
	}
	remove := func(name string) error {
		if err := os.Remove(filepath.Join(packDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("repair clone: %w", err)
		}
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "tmp_pack_") || strings.HasPrefix(name, "tmp_idx_"):
			if err := remove(name); err != nil {
				return removedPack, err
			}
		case strings.HasPrefix(name, "pack-") && strings.HasSuffix(name, ".idx"):
			pack := strings.TrimSuffix(name, ".idx") + ".pack"
			ok, err := indexIntact(filepath.Join(packDir, name))
			if err != nil {
				return removedPack, err
			}
			if have[pack] && ok {
				continue
			}
			if err := remove(name); err != nil {
				return removedPack, err
			}
			if have[pack] {
				removedPack = true
				if err := remove(pack); err != nil {
					return removedPack, err
				}
			}
		case strings.HasPrefix(name, "pack-") && strings.HasSuffix(name, ".pack"):
			if !have[strings.TrimSuffix(name, ".pack")+".idx"] {
				removedPack = true
				if err := remove(name); err != nil {
					return removedPack, err
				}
			}
		}
	}
	return removedPack, nil
}

// repairRefs removes loose refs that a process killed while go-git wrote
// them left empty or cut short (go-git truncates a ref file, then writes
// it): go-git refuses to fetch while one is there ("ref file is empty").
// A removed ref is fetched again; the bot keeps no ref of its own.
func repairRefs(dir string) (removed bool, err error) {
	root := filepath.Join(dir, "refs")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if refIntact(b) {
			return nil
		}
		removed = true
		return os.Remove(path)
	})
	if err != nil {
		return removed, fmt.Errorf("repair clone refs: %w", err)
	}
	return removed, nil
}

// refIntact tells whether b is a whole loose ref: a hash or "ref: …", and
// its newline.
func refIntact(b []byte) bool {
	line, ok := bytes.CutSuffix(b, []byte("\n"))
	if !ok {
		return false
	}
	if target, ok := bytes.CutPrefix(line, []byte("ref: ")); ok {
		return len(target) > 0
	}
	if len(line) != 40 {
		return false
	}
	for _, c := range line {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// indexIntact checks a pack index's trailing SHA-1 against its content.
func indexIntact(name string) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, fmt.Errorf("repair clone: %w", err)
	}
	defer f.Close() //nolint:errcheck // read-only
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("repair clone: %w", err)
	}
	const sum = sha1.Size
	// A version 2 index: magic, version, 256 fanout entries, then the pack's
	// and the index's checksums at least.
	if fi.Size() < 8+256*4+2*sum {
		return false, nil
	}
	h := sha1.New() //nolint:gosec // git's format
	if _, err := io.CopyN(h, f, fi.Size()-sum); err != nil {
		return false, fmt.Errorf("repair clone: %w", err)
	}
	want := make([]byte, sum)
	if _, err := io.ReadFull(f, want); err != nil {
		return false, fmt.Errorf("repair clone: %w", err)
	}
	return bytes.Equal(h.Sum(nil), want), nil
}
