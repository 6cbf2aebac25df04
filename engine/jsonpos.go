package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jkind is the JSON type of a jvalue.
type jkind int

const (
	jnull jkind = iota
	jbool
	jnumber
	jstring
	jarray
	jobject
)

func (k jkind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// jvalue is a decoded JSON value that remembers where it starts in the source, so that every
// problem found after decoding can still be reported as file:line:col.
type jvalue struct {
	off  int // byte offset of the value's first character
	kind jkind
	b    bool
	num  json.Number
	str  string
	arr  []*jvalue
	obj  []jmember // in source order
}

type jmember struct {
	key    string
	keyOff int
	val    *jvalue
}

// get returns the member named key, or nil.
func (v *jvalue) get(key string) *jvalue {
	if v == nil || v.kind != jobject {
		return nil
	}
	for i := range v.obj {
		if v.obj[i].key == key {
			return v.obj[i].val
		}
	}
	return nil
}

// plain converts the value to plain JSON values: map[string]any, []any, string, bool, nil, and
// numbers as PlainNumbers makes them.
func (v *jvalue) plain() any {
	switch v.kind {
	case jbool:
		return v.b
	case jnumber:
		return plainNumber(v.num)
	case jstring:
		return v.str
	case jarray:
		out := make([]any, len(v.arr))
		for i, e := range v.arr {
			out[i] = e.plain()
		}
		return out
	case jobject:
		out := make(map[string]any, len(v.obj))
		for _, m := range v.obj {
			out[m.key] = m.val.plain()
		}
		return out
	}
	return nil
}

// SyntaxError is malformed JSON at a byte offset.
type SyntaxError struct {
	Offset int
	Msg    string
	exact  bool // Offset is known to point at the problem
}

// preciseSyntaxError finds where the JSON goes wrong. The streaming decoder reports where the
// token it failed on started, not the bad byte; a whole-document decode reports the byte.
func preciseSyntaxError(src []byte, fallback *SyntaxError) *SyntaxError {
	var v any
	err := json.Unmarshal(src, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(se.Offset)
		if se.Error() != "unexpected end of JSON input" {
			off-- // Offset counts the bad byte
		}
		return &SyntaxError{Offset: max(off, 0), Msg: se.Error(), exact: true}
	}
	return fallback
}

func (e *SyntaxError) Error() string { return e.Msg }

// parseJSON decodes src into a jvalue tree. Duplicate keys in one object are an error, because
// encoding/json would silently keep the last one and a hand-written flow rarely means that.
func parseJSON(src []byte) (*jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	p := &jparser{src: src, dec: dec}
	v, err := p.value()
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) && !se.exact {
			return nil, preciseSyntaxError(src, se)
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &SyntaxError{Offset: p.skip(int(dec.InputOffset())), Msg: "unexpected data after the top-level value", exact: true}
	}
	return v, nil
}

type jparser struct {
	src []byte
	dec *json.Decoder
}

// skip moves off past white space, commas and colons to where the next token starts.
func (p *jparser) skip(off int) int {
	for off < len(p.src) {
		switch p.src[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

func (p *jparser) token() (json.Token, int, error) {
	start := p.skip(int(p.dec.InputOffset()))
	tok, err := p.dec.Token()
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, start, &SyntaxError{Offset: max(int(se.Offset)-1, 0), Msg: se.Error()}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, start, &SyntaxError{Offset: len(p.src), Msg: "unexpected end of JSON input"}
		}
		return nil, start, &SyntaxError{Offset: start, Msg: err.Error()}
	}
	return tok, start, nil
}

func (p *jparser) value() (*jvalue, error) {
	tok, off, err := p.token()
	if err != nil {
		return nil, err
	}
	return p.valueFrom(tok, off)
}

func (p *jparser) valueFrom(tok json.Token, off int) (*jvalue, error) {
	v := &jvalue{off: off}
	switch t := tok.(type) {
	case nil:
		v.kind = jnull
	case bool:
		v.kind, v.b = jbool, t
	case json.Number:
		v.kind, v.num = jnumber, t
	case string:
		v.kind, v.str = jstring, t
	case json.Delim:
		switch t {
		case '[':
			v.kind = jarray
			for p.dec.More() {
				e, err := p.value()
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, e)
			}
			if _, _, err := p.token(); err != nil {
				return nil, err
			}
		case '{':
			v.kind = jobject
			seen := map[string]bool{}
			for p.dec.More() {
				ktok, koff, err := p.token()
				if err != nil {
					return nil, err
				}
				key, _ := ktok.(string)
				if seen[key] {
					return nil, &SyntaxError{Offset: koff, Msg: fmt.Sprintf("duplicate key %q", key), exact: true}
				}
				seen[key] = true
				val, err := p.value()
				if err != nil {
					return nil, err
				}
				v.obj = append(v.obj, jmember{key: key, keyOff: koff, val: val})
			}
			if _, _, err := p.token(); err != nil {
				return nil, err
			}
		default:
			return nil, &SyntaxError{Offset: off, Msg: fmt.Sprintf("unexpected %q", string(t))}
		}
	}
	return v, nil
}

// Position is a 1-based line and column (in bytes) in a source file.
type Position struct {
	Line, Col int
}

func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// positionOf maps a byte offset in src to a line and column.
func positionOf(src []byte, off int) Position {
	off = min(max(off, 0), len(src))
	line := 1 + bytes.Count(src[:off], []byte{'\n'})
	col := off + 1
	if i := bytes.LastIndexByte(src[:off], '\n'); i >= 0 {
		col = off - i
	}
	return Position{Line: line, Col: col}
}

// stringContentOffset returns the offset in src of the character that holds byte idx of the
// decoded string whose literal starts at off (the opening quote). Escapes make the two differ:
// \n is two bytes for one, \u00e9 six for two, a surrogate pair twelve for four, and a byte
// that is not UTF-8 one for the three of U+FFFD, which the decoder puts in its place.
func stringContentOffset(src []byte, off, idx int) int {
	if off >= len(src) || src[off] != '"' {
		return off
	}
	i := off + 1
	for n := 0; i < len(src) && src[i] != '"'; {
		size, decoded := literalChar(src[i:])
		if n += decoded; n > idx {
			break
		}
		i += size
	}
	return min(i, len(src))
}

// literalChar measures the character a JSON string literal's content starts with: its size in
// the source and the size of what it decodes to.
func literalChar(b []byte) (size, decoded int) {
	if b[0] != '\\' {
		r, size := utf8.DecodeRune(b)
		return size, utf8.RuneLen(r)
	}
	if len(b) < 6 || b[1] != 'u' {
		return min(2, len(b)), 1
	}
	r := hexRune(b[2:6])
	if utf16.IsSurrogate(r) && len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
		if pair := utf16.DecodeRune(r, hexRune(b[8:12])); pair != utf8.RuneError {
			return 12, utf8.RuneLen(pair)
		}
	}
	if utf16.IsSurrogate(r) || r < 0 {
		r = utf8.RuneError
	}
	return 6, utf8.RuneLen(r)
}

// hexRune reads four hex digits, or returns -1.
func hexRune(b []byte) rune {
	n, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return -1
	}
	return rune(n)
}

// maxSuggestLen bounds the length of the names DidYouMean compares: a suggestion is for a
// typo in a short name, and comparing two names costs the product of their lengths.
const maxSuggestLen = 64

// DidYouMean returns ` (did you mean "x"?)` for the candidate closest to got, or "" when none
// is close. A candidate that starts with what was typed (maxTry → maxTries) counts as close.
// Names longer than maxSuggestLen get no suggestion.
func DidYouMean(got string, candidates []string) string {
	if len(got) > maxSuggestLen {
		return ""
	}
	lgot := strings.ToLower(got)
	limit := max(1, len(got)/3)
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if len(c) > maxSuggestLen {
			continue
		}
		lc := strings.ToLower(c)
		var d int
		switch {
		case lc == lgot:
			d = 0
		case len(lgot) >= 3 && strings.HasPrefix(lc, lgot):
			d = 1
		case abs(len(lc)-len(lgot)) <= limit: // the distance is at least the difference
			d = editDistance(lgot, lc)
		default:
			continue
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > limit || bestD >= len(got) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func abs(n int) int { return max(n, -n) }

// editDistance is the optimal-string-alignment distance: insertions, deletions,
// substitutions and swaps of neighbours (basci → basic) each cost one. It keeps three rows
// of the table, so it needs memory for len(b) only.
func editDistance(a, b string) int {
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
