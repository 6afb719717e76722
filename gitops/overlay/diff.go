package overlay

import (
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// diffContext is how many unchanged lines are kept around each change.
const diffContext = 3

// lineDiff is a unified-style diff of two texts, line by line ("-" removed,
// "+" added, " " context, "…" for unchanged lines left out); empty when they
// are equal. It uses sergi/go-diff (Myers' algorithm on lines).
func lineDiff(before, after string) string {
	if before == after {
		return ""
	}
	dmp := diffmatchpatch.New()
	a, b, lines := dmp.DiffLinesToChars(before, after)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(a, b, false), lines)
	type line struct {
		op   byte
		text string
	}
	var all []line
	for _, d := range diffs {
		op := byte(' ')
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			op = '-'
		case diffmatchpatch.DiffInsert:
			op = '+'
		}
		for _, l := range strings.SplitAfter(d.Text, "\n") {
			if l != "" {
				all = append(all, line{op, strings.TrimSuffix(l, "\n")})
			}
		}
	}
	keep := make([]bool, len(all))
	for i, l := range all {
		if l.op == ' ' {
			continue
		}
		for j := max(0, i-diffContext); j <= min(len(all)-1, i+diffContext); j++ {
			keep[j] = true
		}
	}
	var w strings.Builder
	skipped := false
	for i, l := range all {
		if !keep[i] {
			if !skipped {
				w.WriteString("…\n")
			}
			skipped = true
			continue
		}
		skipped = false
		w.WriteByte(l.op)
		w.WriteString(l.text)
		w.WriteByte('\n')
	}
	return w.String()
}
