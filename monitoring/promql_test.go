package monitoring_test

import (
	"fmt"
	"strings"
)

// selector is a name in PromQL text that may be a metric, with the label
// matchers written after it. Function names, keywords and the labels of
// by/without/on are names too; callers keep those they care about.
type selector struct {
	name     string
	matchers []matcher
}

// matcher is one label matcher: label op "value".
type matcher struct {
	label, op, value string
}

// selectors returns the names in the PromQL text q, each with its label
// matchers, and the bare matcher lists ({job="x"}) under an empty name. It
// is a tokenizer, not a parser: it skips strings, comments, ranges and
// subqueries ([5m], [30m:1m]), numbers and durations, Grafana variables
// ($store, ${store}, $__rate_interval) and names called as functions, which
// is all it takes to find every metric a query names.
func selectors(q string) ([]selector, error) {
	var out []selector
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			_, n, err := quoted(q[i:])
			if err != nil {
				return nil, err
			}
			i += n
		case c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '[':
			j := strings.IndexByte(q[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed [ at offset %d", i)
			}
			i += j + 1
		case c == '$':
			i++
			if i < len(q) && q[i] == '{' {
				j := strings.IndexByte(q[i:], '}')
				if j < 0 {
					return nil, fmt.Errorf("unclosed ${ at offset %d", i)
				}
				i += j + 1
				break
			}
			for i < len(q) && isNameByte(q[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(q) && (isNameByte(q[i]) || q[i] == '.') {
				i++
			}
		case c == '{':
			ms, n, err := matchers(q[i:])
			if err != nil {
				return nil, fmt.Errorf("offset %d: %w", i, err)
			}
			out = append(out, selector{matchers: ms})
			i += n
		case isNameByte(c):
			j := i
			for j < len(q) && isNameByte(q[j]) {
				j++
			}
			s := selector{name: q[i:j]}
			k := skipSpace(q, j)
			switch {
			case k < len(q) && q[k] == '(':
				// A function, or by/without/on/ignoring and their labels.
				i = j
				continue
			case k < len(q) && q[k] == '{':
				ms, n, err := matchers(q[k:])
				if err != nil {
					return nil, fmt.Errorf("offset %d: %w", k, err)
				}
				s.matchers, j = ms, k+n
			}
			out = append(out, s)
			i = j
		default:
			i++
		}
	}
	return out, nil
}

// matchers reads the label matchers of q, which starts with '{', and
// returns them and the length read, up to and including '}'.
func matchers(q string) ([]matcher, int, error) {
	var ms []matcher
	i := 1
	for {
		i = skipSpace(q, i)
		if i >= len(q) {
			return nil, 0, fmt.Errorf("unclosed {")
		}
		if q[i] == '}' {
			return ms, i + 1, nil
		}
		j := i
		for j < len(q) && isNameByte(q[j]) {
			j++
		}
		if j == i {
			return nil, 0, fmt.Errorf("a label name expected at %q", q[i:])
		}
		m := matcher{label: q[i:j]}
		i = skipSpace(q, j)
		for _, op := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(q[i:], op) {
				m.op = op
				break
			}
		}
		if m.op == "" {
			return nil, 0, fmt.Errorf("label %s: an operator expected at %q", m.label, q[i:])
		}
		i = skipSpace(q, i+len(m.op))
		v, n, err := quoted(q[i:])
		if err != nil {
			return nil, 0, fmt.Errorf("label %s: %w", m.label, err)
		}
		m.value = v
		ms = append(ms, m)
		i = skipSpace(q, i+n)
		if i < len(q) && q[i] == ',' {
			i++
		}
	}
}

// quoted reads the string literal q starts with and returns its content
// (escapes left as written) and the length read.
func quoted(q string) (string, int, error) {
	if q == "" || !strings.ContainsRune("\"'`", rune(q[0])) {
		return "", 0, fmt.Errorf("a string expected at %q", q)
	}
	quote := q[0]
	for i := 1; i < len(q); i++ {
		switch {
		case q[i] == '\\' && quote != '`':
			i++
		case q[i] == quote:
			return q[1:i], i + 1, nil
		}
	}
	return "", 0, fmt.Errorf("unclosed string %s", q)
}

// isNameByte reports whether c may be part of a metric or label name, or of
// a recording rule's name (which has colons).
func isNameByte(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func skipSpace(q string, i int) int {
	for i < len(q) && strings.IndexByte(" \t\r\n", q[i]) >= 0 {
		i++
	}
	return i
}
