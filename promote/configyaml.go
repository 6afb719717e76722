package promote

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// nodeIndex maps each key path of a YAML document ("gitops.repo",
// "projects[1].qa[0]") to where it stands, so that problems can name lines.
type nodeIndex struct {
	entries []nodeEntry
	byPath  map[string]int
}

type nodeEntry struct {
	path  string
	key   string // the mapping key; empty for a sequence item
	line  int    // the key's line, or the item's
	value *yaml.Node
}

// parseTree parses data into a node index. It reports syntax errors and a
// second document, which would otherwise be ignored silently.
func parseTree(data []byte) (*nodeIndex, []Problem) {
	idx := &nodeIndex{byPath: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return idx, nil
		}
		return nil, []Problem{syntaxProblem(err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, []Problem{{Line: extra.Line, Msg: "only one YAML document is allowed"}}
	case !errors.Is(err, io.EOF):
		return nil, []Problem{syntaxProblem(err)}
	}
	if len(doc.Content) > 0 {
		idx.walk(doc.Content[0], "")
	}
	return idx, nil
}

func (x *nodeIndex) walk(n *yaml.Node, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			x.add(nodeEntry{path: p, key: k.Value, line: k.Line, value: v})
			x.walk(v, p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			x.add(nodeEntry{path: p, line: item.Line, value: item})
			x.walk(item, p)
		}
	}
}

func (x *nodeIndex) add(e nodeEntry) {
	if _, dup := x.byPath[e.path]; !dup {
		x.byPath[e.path] = len(x.entries)
	}
	x.entries = append(x.entries, e)
}

// line returns the line of path or, when path is absent, of its nearest
// ancestor that is present; 0 when none is.
func (x *nodeIndex) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if i, ok := x.byPath[p]; ok {
			return x.entries[i].line
		}
	}
	return 0
}

// value returns the node at path, or nil when path is absent or null.
func (x *nodeIndex) value(path string) *yaml.Node {
	i, ok := x.byPath[path]
	if !ok || x.entries[i].value.Tag == "!!null" {
		return nil
	}
	return x.entries[i].value
}

// hasValue reports whether path is present with a value other than null.
func (x *nodeIndex) hasValue(path string) bool {
	return x.value(path) != nil
}

// pathAt returns the path of the first entry on line whose key is key (any
// entry when key is empty).
func (x *nodeIndex) pathAt(line int, key string) string {
	for _, e := range x.entries {
		if e.line == line && (key == "" || e.key == key) {
			return e.path
		}
	}
	return key
}

// valueAt returns the entry whose value is on line with the given tag and,
// for a scalar, reads snippet as yaml quotes it (cut to 7 characters and "..."
// when long). It returns nil when that value is the document itself.
func (x *nodeIndex) valueAt(line int, tag, snippet string) *nodeEntry {
	prefix, cut := strings.CutSuffix(snippet, "...")
	for i, e := range x.entries {
		v := e.value
		if v.Line != line || v.ShortTag() != tag {
			continue
		}
		if v.Kind != yaml.ScalarNode || v.Value == snippet || (cut && strings.HasPrefix(v.Value, prefix)) {
			return &x.entries[i]
		}
	}
	return nil
}

// parentPath returns "projects[1]" for "projects[1].id", "projects" for
// "projects[1]", and "" for a top-level key.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		return p[:strings.LastIndexByte(p, '[')]
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// yaml v3 reports problems only as text ("line 3: field x not found in type
// T"); these patterns turn that text back into problems with a path.
var (
	yamlLineRe      = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownFieldRe  = regexp.MustCompile(`^field (.+) not found in type \S+$`)
	duplicateKeyRe  = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
	cannotDecodeRe  = regexp.MustCompile("^cannot unmarshal (!!\\w+)( `.*`)? into (.+)$")
	yamlTagMeanings = map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!null": "null"}
)

// atoi returns the number in s, or 0 (no line) when s is out of range.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

// syntaxProblem explains an error that stopped yaml from parsing at all.
func syntaxProblem(err error) Problem {
	m := yamlLineRe.FindStringSubmatch(err.Error())
	if m == nil {
		return Problem{Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	line, msg := atoi(m[1]), m[2]
	if isParserError(msg) {
		// yaml v3 numbers parser (not scanner) errors from 0 and places them
		// where the enclosing block starts, which may be above the mistake.
		return Problem{Line: line + 1, Msg: "invalid YAML at or below this line: " + msg}
	}
	return Problem{Line: line, Msg: "invalid YAML: " + msg}
}

func isParserError(msg string) bool {
	for _, prefix := range []string{"did not find expected", "found duplicate %", "found incompatible YAML", "found undefined tag"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// decodeProblems turns a decoding error into problems. complete reports
// whether the document was nevertheless decoded in full, which holds when
// every problem is an unknown key.
func decodeProblems(err error, idx *nodeIndex) (problems []Problem, complete bool) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{syntaxProblem(err)}, false
	}
	complete = true
	for _, msg := range te.Errors {
		m := yamlLineRe.FindStringSubmatch(msg)
		if m == nil {
			problems = append(problems, Problem{Msg: msg})
			complete = false
			continue
		}
		p, unknown := typeProblem(atoi(m[1]), m[2], idx)
		problems = append(problems, p)
		complete = complete && unknown
	}
	return problems, complete
}

// typeProblem explains one of yaml's per-line messages; unknown reports
// whether it was about an unknown key.
func typeProblem(line int, msg string, idx *nodeIndex) (p Problem, unknown bool) {
	if m := unknownFieldRe.FindStringSubmatch(msg); m != nil {
		field := idx.pathAt(line, m[1])
		known := strings.Join(knownKeys(parentPath(field)), ", ")
		return Problem{Line: line, Field: field, Msg: "unknown key (known keys here: " + known + ")"}, true
	}
	if m := duplicateKeyRe.FindStringSubmatch(msg); m != nil {
		return Problem{Line: line, Field: idx.pathAt(line, m[1]), Msg: "duplicate key, first defined on line " + m[2]}, false
	}
	if m := cannotDecodeRe.FindStringSubmatch(msg); m != nil {
		tag, snippet := m[1], strings.Trim(m[2], " `")
		e := idx.valueAt(line, tag, snippet)
		got := cmp.Or(yamlTagMeanings[tag], tag)
		switch {
		case e != nil && e.value.Kind == yaml.ScalarNode:
			got = strconv.Quote(e.value.Value)
		case e == nil && m[2] != "":
			got = strconv.Quote(snippet)
		}
		var field string
		if e != nil {
			field = e.path
		}
		return Problem{Line: line, Field: field, Msg: "must be " + describeGoType(m[3]) + ", not " + got}, false
	}
	return Problem{Line: line, Field: idx.pathAt(line, ""), Msg: msg}, false
}

// describeGoType names the YAML shape a Go type in a yaml message stands for.
func describeGoType(t string) string {
	switch {
	case t == "int":
		return "an integer"
	case t == "[]string":
		return "a list of strings"
	case t == "[]promote.Project":
		return "a list of projects"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "string" || t == "promote.MergeMethod":
		return "a string"
	case strings.HasPrefix(t, "promote."):
		return "a mapping"
	}
	return "a " + t
}

// knownKeys lists the YAML keys Config accepts in the mapping at path.
func knownKeys(path string) []string {
	t := reflect.TypeFor[Config]()
	if path != "" {
		for _, part := range strings.Split(path, ".") {
			name, _, _ := strings.Cut(part, "[")
			if t = yamlField(t, name); t == nil {
				return nil
			}
			for range strings.Count(part, "[") {
				if t.Kind() != reflect.Slice {
					return nil
				}
				t = t.Elem()
			}
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	keys := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		keys = append(keys, yamlKey(f))
	}
	return keys
}

// yamlField returns the type of the struct field of t with the YAML key name.
func yamlField(t reflect.Type, name string) reflect.Type {
	if t.Kind() != reflect.Struct {
		return nil
	}
	for f := range t.Fields() {
		if yamlKey(f) == name {
			return f.Type
		}
	}
	return nil
}

func yamlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return key
}
