package gitops

import (
	"fmt"
	"testing"
)

// TestAnswersForgetTheOldest: the cache of Contains keeps maxAnswers
// answers, forgetting the oldest first, and a repeat takes no room.
func TestAnswersForgetTheOldest(t *testing.T) {
	var a answers
	key := func(i int) [2]string { return [2]string{fmt.Sprint(i), "c"} }
	for i := range maxAnswers {
		a.put(key(i), i%2 == 0)
	}
	a.put(key(0), false) // a repeat: the first answer stays
	if ok, found := a.get(key(0)); !found || !ok {
		t.Fatalf("key 0 = %v, %v; want true, found", ok, found)
	}
	a.put(key(maxAnswers), true)
	a.put(key(maxAnswers+1), true)
	for i, want := range map[int]bool{0: false, 1: false, 2: true, maxAnswers - 1: true, maxAnswers + 1: true} {
		if _, found := a.get(key(i)); found != want {
			t.Errorf("key %d found = %v, want %v", i, found, want)
		}
	}
	if len(a.m) != maxAnswers || len(a.order) != maxAnswers {
		t.Fatalf("%d answers, %d keys; want %d", len(a.m), len(a.order), maxAnswers)
	}
}
