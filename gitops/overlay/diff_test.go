package overlay

import (
	"testing"
)

func TestLineDiff(t *testing.T) {
	before := "a\nb\nc\nd\ne\nf\ng\nh\nimage: x:1\ni\n"
	after := "a\nb\nc\nd\ne\nf\ng\nh\nimage: x:2\ni\n"
	want := "…\n f\n g\n h\n-image: x:1\n+image: x:2\n i\n"
	if got := lineDiff(before, after); got != want {
		t.Fatalf("LineDiff =\n%s\nwant\n%s", got, want)
	}
	if got := lineDiff(before, before); got != "" {
		t.Fatalf("LineDiff of equal texts = %q", got)
	}
}
