package store

import (
	"crypto/rand"
	"fmt"
	"sync"
	"time"
)

// crockford is Crockford's base32 alphabet: no I, L, O or U, so ids read
// aloud or copied from Slack survive.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idLen is the length of a build id: 128 bits in 5-bit characters.
const idLen = 26

// ids makes build ids: a ULID, 48 bits of Unix milliseconds then 80 random
// bits, in Crockford base32. Within one millisecond the random part counts up
// from the last id, so ids made by one process sort in the order they were made.
type ids struct {
	mu     sync.Mutex
	lastMS int64
	last   [10]byte
}

// next returns a new id for time t.
func (g *ids) next(t time.Time) (string, error) {
	ms := t.UnixMilli()
	g.mu.Lock()
	defer g.mu.Unlock()
	if ms <= g.lastMS && increment(&g.last) {
		ms = g.lastMS // the clock stood still or went back: stay ordered
	} else {
		if _, err := rand.Read(g.last[:]); err != nil {
			return "", fmt.Errorf("random id: %w", err)
		}
		g.lastMS = ms
	}
	var raw [16]byte
	for i := range 6 {
		raw[i] = byte(ms >> (40 - 8*i))
	}
	copy(raw[6:], g.last[:])
	return encodeID(raw), nil
}

// increment adds one to b as a big-endian number; false when it overflowed.
func increment(b *[10]byte) bool {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return true
		}
	}
	return false
}

// encodeID writes 128 bits as 26 base32 characters, most significant first;
// the first character carries only 3 bits.
func encodeID(raw [16]byte) string {
	var out [idLen]byte
	for c := range idLen {
		v := 0
		for k := range 5 {
			bit := c*5 + k - 2 // two leading zero bits pad 128 to 130
			v <<= 1
			if bit >= 0 && raw[bit/8]&(0x80>>(bit%8)) != 0 {
				v |= 1
			}
		}
		out[c] = crockford[v]
	}
	return string(out[:])
}
