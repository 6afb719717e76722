package store

import (
	"strings"
	"testing"
	"time"
)

func TestEncodeID(t *testing.T) {
	var zero, ones [16]byte
	for i := range ones {
		ones[i] = 0xff
	}
	for _, c := range []struct {
		raw  [16]byte
		want string
	}{
		{zero, "00000000000000000000000000"},
		{ones, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		// The ULID spec's example time, 1469918176385 ms, with zero randomness.
		{[16]byte{0x01, 0x56, 0x3d, 0xf3, 0x64, 0x81}, "01ARYZ6S41" + strings.Repeat("0", 16)},
	} {
		if got := encodeID(c.raw); got != c.want {
			t.Errorf("encodeID(%x) = %s, want %s", c.raw, got, c.want)
		}
	}
}

func TestIDs(t *testing.T) {
	var g ids
	at := time.UnixMilli(1469918176385)
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		now := at.Add(time.Duration(i/100) * time.Millisecond)
		if i == 500 {
			now = at // the clock went back
		}
		id, err := g.next(now)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != idLen || strings.Trim(id, crockford) != "" {
			t.Fatalf("id %q is not %d Crockford base32 characters", id, idLen)
		}
		if id <= prev || seen[id] {
			t.Fatalf("id #%d %s does not sort after %s", i, id, prev)
		}
		if !strings.HasPrefix(id, "01ARYZ6S4") {
			t.Fatalf("id %s does not start with its time", id)
		}
		seen[id], prev = true, id
	}
}
