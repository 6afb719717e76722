package history

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestTreeEntries(t *testing.T) {
	h1, h2 := strings.Repeat("\x01", hashLen), strings.Repeat("\x02", hashLen)
	a := tree("40000 apps\x00" + h1 + "100644 README.md\x00" + h1)
	b := tree("40000 apps\x00" + h2 + "100644 README.md\x00" + h1 + "100644 z\x00" + h2)
	for _, tr := range []tree{a, b} {
		if err := checkTree(tr); err != nil {
			t.Fatalf("checkTree: %v", err)
		}
	}
	if e, ok := b.find("z"); !ok || e.Mode != filemode.Regular || e.Hash[0] != 2 {
		t.Fatalf("find z: %+v %v", e, ok)
	}
	if _, ok := b.find("README"); ok {
		t.Fatal("find matches a prefix")
	}
	var got []string
	err := joinEntries(a, b, func(x, y object.TreeEntry) error {
		got = append(got, x.Name+"|"+y.Name)
		return nil
	})
	if want := []string{"apps|apps", "|z"}; err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("joinEntries %v (%v), want %v: entries stored alike are skipped", got, err, want)
	}
	got = got[:0]
	c := tree("100644 a\x00" + h1 + "40000 apps\x00" + h1 + "100644 z\x00" + h1)
	d := tree("100644 a\x00" + h1 + "40000 apps\x00" + h2 + "100644 z\x00" + h1)
	err = joinEntries(c, d, func(x, y object.TreeEntry) error {
		got = append(got, x.Name+"|"+y.Name)
		return nil
	})
	if err != nil || strings.Join(got, ",") != "apps|apps" {
		t.Fatalf("joinEntries %v (%v), want [apps|apps]", got, err)
	}
	for _, bad := range []string{
		"40000 apps\x00" + h1[:19], // hash cut short
		"40009 apps\x00" + h1,      // not octal
		"40000 \x00" + h1,          // no name
		"40000apps\x00" + h1,       // no space
		"12345678 apps\x00" + h1,   // mode too long
		"40000 apps" + h1,          // no NUL
	} {
		if err := checkTree([]byte(bad)); !errors.Is(err, errMalformedTree) {
			t.Errorf("checkTree(%q) = %v, want errMalformedTree", bad, err)
		}
	}
}

func TestScanTreeOverlays(t *testing.T) {
	h := strings.Repeat("\x01", hashLen)
	for _, c := range []struct {
		tree string
		want bool
	}{
		{"", false},
		{"100644 kustomization.yaml\x00" + h, false},
		{"40000 base\x00" + h + "40000 overlays\x00" + h, true},
		{"100644 overlays\x00" + h, false},                                  // a file
		{"40000 overlays-old\x00" + h + "100644 x overlays\x00" + h, false}, // names that only contain it
		{"100644 overlays\x00" + h + "40000 overlays\x00" + h, false},       // the first entry of the name decides, as find does
		{"1234567 a\x00" + h + "40000 overlays\x00" + h, true},              // a mode of 7 digits is read
	} {
		got, err := scanTree([]byte(c.tree))
		if err != nil || got != c.want {
			t.Errorf("scanTree(%q) = %v, %v; want %v", c.tree, got, err, c.want)
		}
		if got != (func() bool { e, ok := tree(c.tree).find("overlays"); return ok && e.Mode == filemode.Dir })() {
			t.Errorf("scanTree(%q) disagrees with find", c.tree)
		}
	}
	if _, err := scanTree([]byte("40000 apps\x00" + h + "100644")); !errors.Is(err, errMalformedTree) {
		t.Errorf("scanTree of a cut entry: %v, want errMalformedTree", err)
	}
}
