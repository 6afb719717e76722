package promote

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Line is the 1-based line the problem is on, 0 when it has none (a
	// missing top-level key, an empty file).
	Line int
	// Field is the key's path, such as "projects[1].id"; empty when the
	// problem is the document itself.
	Field string
	// Msg says what is wrong, for a person.
	Msg string
}

// ConfigError is returned for a configuration that is not valid. It lists
// every problem found, sorted by line.
type ConfigError struct {
	// Name is the configuration's file name, as given to ParseConfig or
	// LoadConfig.
	Name string
	// Problems holds at least one problem.
	Problems []Problem
}

func newConfigError(name string, problems []Problem) *ConfigError {
	problems = slices.Clone(problems)
	slices.SortStableFunc(problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return &ConfigError{Name: name, Problems: problems}
}

// Error lists the problems one per line, as "name:line: field: message".
func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Name)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}
