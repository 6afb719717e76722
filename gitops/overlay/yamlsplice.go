package overlay

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// The text-splicing half of the images: editor: node positions become byte
// offsets, and only the bytes of the entry being changed are rewritten.

// textEdit replaces data[start:end] with text.
type textEdit struct {
	start, end int
	text       string
}

// source indexes a file's lines so nodes' positions can be turned into byte
// offsets. Lines break where the YAML parser counts a break: at "\r\n", "\n",
// and also at a lone "\r", NEL, LS and PS, or every position after one would
// point at the wrong line.
type source struct {
	data  []byte
	lines []int // byte offset where each line starts
	ends  []int // byte offset where each line's text ends, before its break
	eol   string
}

func newSource(data []byte) *source {
	s := &source{data: data, lines: []int{0}, eol: "\n"}
	for i := 0; i < len(data); i++ {
		n := breakLen(data[i:])
		if n == 0 {
			continue
		}
		if len(s.ends) == 0 && n == 2 && data[i] == '\r' {
			s.eol = "\r\n"
		}
		s.ends = append(s.ends, i)
		s.lines = append(s.lines, i+n)
		i += n - 1
	}
	s.ends = append(s.ends, len(data))
	return s
}

// breakLen returns the length of the line break b starts with, 0 for none.
func breakLen(b []byte) int {
	switch {
	case bytes.HasPrefix(b, []byte("\r\n")), bytes.HasPrefix(b, []byte("\u0085")):
		return 2
	case b[0] == '\n' || b[0] == '\r':
		return 1
	case bytes.HasPrefix(b, []byte("\u2028")), bytes.HasPrefix(b, []byte("\u2029")):
		return 3
	}
	return 0
}

// next returns the offset just past line l (1-based), line break included.
func (s *source) next(l int) int {
	if l < len(s.lines) {
		return s.lines[l]
	}
	return len(s.data)
}

// line returns where line l starts and its text without the line break.
func (s *source) line(l int) (int, string) {
	start := s.lines[l-1]
	return start, string(s.data[start:s.ends[l-1]])
}

// offset turns a node's line and column (1-based, counted in characters, as
// the YAML parser counts them) into a byte offset.
func (s *source) offset(line, col int) (int, error) {
	if line < 1 || line > len(s.lines) {
		return 0, errNoSplice
	}
	start, text := s.line(line)
	i := 0
	for range col - 1 {
		if i >= len(text) {
			return 0, errNoSplice
		}
		_, w := utf8.DecodeRuneInString(text[i:])
		i += w
	}
	return start + i, nil
}

// scalar returns the byte range of a scalar written on one line, after
// checking that the bytes read back as the node's value.
func (s *source) scalar(n *yaml.Node) (int, int, error) {
	odd := yaml.TaggedStyle | yaml.LiteralStyle | yaml.FoldedStyle | yaml.FlowStyle
	if n.Kind != yaml.ScalarNode || n.Anchor != "" || n.Style&odd != 0 || n.Value == "" && n.Style == 0 {
		return 0, 0, errNoSplice
	}
	start, err := s.offset(n.Line, n.Column)
	if err != nil {
		return 0, 0, err
	}
	ls, text := s.line(n.Line)
	rest := text[start-ls:]
	var end int
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		end = closeQuote(rest, '"')
	case n.Style&yaml.SingleQuotedStyle != 0:
		end = closeQuote(rest, '\'')
	default:
		end = plainEnd(rest)
	}
	if end <= 0 {
		return 0, 0, errNoSplice
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(rest[:end]), &doc); err != nil || len(doc.Content) != 1 ||
		doc.Content[0].Kind != yaml.ScalarNode || doc.Content[0].Value != n.Value {
		return 0, 0, errNoSplice
	}
	return start, start + end, nil
}

// closeQuote returns the length of the quoted scalar at the start of s, or
// -1 when it does not close on this line.
func closeQuote(s string, q byte) int {
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return -1
}

// plainEnd returns the length of the block plain scalar at the start of s: it
// ends before ": ", a final ":", or " #", trailing blanks trimmed.
func plainEnd(s string) int {
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == ':' && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\t') ||
			(s[i] == ' ' || s[i] == '\t') && i+1 < len(s) && s[i+1] == '#' {
			end = i
			break
		}
	}
	return len(strings.TrimRight(s[:end], " \t"))
}

// lastLine returns the last line of a block node, checking that every scalar
// below it can be located exactly.
func (s *source) lastLine(n *yaml.Node) (int, error) {
	if n.Kind == yaml.ScalarNode {
		if _, _, err := s.scalar(n); err != nil {
			return 0, err
		}
		return n.Line, nil
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" || n.Style&yaml.FlowStyle != 0 || len(n.Content) == 0 {
		return 0, errNoSplice
	}
	last := n.Line
	for _, c := range n.Content {
		l, err := s.lastLine(c)
		if err != nil {
			return 0, err
		}
		last = max(last, l)
	}
	return last, nil
}

// splice computes the text edits for a plan and applies them.
func splice(data []byte, p imagePlan) ([]byte, error) {
	s := newSource(data)
	var edits []textEdit
	var err error
	switch {
	case p.entry != nil:
		edits, err = s.editEntry(p)
	case p.images != nil && p.images.Kind == yaml.SequenceNode:
		edits, err = s.appendEntry(p)
	case p.imagesKey == nil:
		edits, err = s.appendImages(p)
	default:
		err = errNoSplice
	}
	if err != nil {
		return nil, err
	}
	return applyEdits(data, edits)
}

// editEntry replaces, inserts and removes keys of the matched entry.
func (s *source) editEntry(p imagePlan) ([]textEdit, error) {
	e := p.entry
	last, err := s.lastLine(e)
	if err != nil || p.images.Style&yaml.FlowStyle != 0 {
		return nil, errNoSplice
	}
	var edits []textEdit
	var insert strings.Builder
	for _, f := range p.set {
		_, v := mapLookup(e, f.key)
		switch {
		case v == nil:
			insert.WriteString(strings.Repeat(" ", e.Column-1) + f.key + ": " + formatScalar(f.value, 0) + s.eol)
		case holds(v, f.value):
		default:
			start, end, err := s.scalar(v)
			if err != nil {
				return nil, err
			}
			edits = append(edits, textEdit{start, end, formatScalar(f.value, v.Style)})
		}
	}
	for _, key := range p.remove {
		k, v := mapLookup(e, key)
		off, err := s.offset(k.Line, k.Column)
		if err != nil || k.Line != v.Line {
			return nil, errNoSplice
		}
		ls := s.lines[k.Line-1]
		if strings.Trim(string(s.data[ls:off]), " ") != "" {
			return nil, errNoSplice // the key shares its line with "- " or another key
		}
		edits = append(edits, textEdit{ls, s.next(k.Line), ""})
	}
	if insert.Len() > 0 {
		edits = append(edits, s.insertAfter(last, insert.String()))
	}
	return edits, nil
}

// appendEntry adds a new entry after the last one of images:.
func (s *source) appendEntry(p imagePlan) ([]textEdit, error) {
	seq := p.images
	if seq.Style&yaml.FlowStyle != 0 || len(seq.Content) == 0 {
		return nil, errNoSplice
	}
	last, err := s.lastLine(seq)
	if err != nil {
		return nil, err
	}
	dash, content := seq.Column-1, seq.Content[0].Column-1
	off, err := s.offset(seq.Line, seq.Column)
	if err != nil || content <= dash || s.data[off] != '-' {
		return nil, errNoSplice
	}
	return []textEdit{s.insertAfter(last, entryLines(p.set, dash, content, s.eol))}, nil
}

// appendImages adds an images: block at the end of the file.
func (s *source) appendImages(p imagePlan) ([]textEdit, error) {
	if p.root != nil && (p.root.Style&yaml.FlowStyle != 0 || p.root.Column != 1) {
		return nil, errNoSplice
	}
	lf := bytes.ReplaceAll(s.data, []byte("\r\n"), []byte("\n"))
	dash := 0
	if yaml.DeriveSeqIndentStyle(string(lf)) == string(yaml.WideSequenceStyle) {
		dash = 2
	}
	text := "images:" + s.eol + entryLines(p.set, dash, dash+2, s.eol)
	return []textEdit{s.insertAfter(len(s.lines), text)}, nil
}

// insertAfter inserts whole lines after line l.
func (s *source) insertAfter(l int, text string) textEdit {
	at := s.next(l)
	if at == len(s.data) && s.lines[len(s.lines)-1] < at {
		text = s.eol + text // the last line has no break
	}
	return textEdit{at, at, text}
}

// entryLines writes a block mapping as a sequence item.
func entryLines(set []field, dash, content int, eol string) string {
	var b strings.Builder
	for i, f := range set {
		if i == 0 {
			b.WriteString(strings.Repeat(" ", dash) + "-" + strings.Repeat(" ", content-dash-1))
		} else {
			b.WriteString(strings.Repeat(" ", content))
		}
		b.WriteString(f.key + ": " + formatScalar(f.value, 0) + eol)
	}
	return b.String()
}

// applyEdits applies non-overlapping edits.
func applyEdits(data []byte, edits []textEdit) ([]byte, error) {
	sort.Slice(edits, func(i, j int) bool {
		if edits[i].start != edits[j].start {
			return edits[i].start > edits[j].start
		}
		return edits[i].end > edits[j].end
	})
	out := bytes.Clone(data)
	limit := len(data)
	for _, e := range edits {
		if e.end > limit {
			return nil, errNoSplice
		}
		out = append(out[:e.start:e.start], append([]byte(e.text), out[e.end:]...)...)
		limit = e.start
	}
	return out, nil
}

// formatScalar writes a string value in the given quote style; plain when
// YAML reads it back as that string, else double-quoted.
func formatScalar(v string, style yaml.Style) string {
	switch {
	case style&yaml.SingleQuotedStyle != 0:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case style&yaml.DoubleQuotedStyle != 0 || !safePlain(v):
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range v {
			switch {
			case r == '"' || r == '\\':
				b.WriteString(`\` + string(r))
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, `\x%02x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	return v
}
