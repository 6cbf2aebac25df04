package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file renders JSON values as collapsible HTML for the run and flow pages: objects and
// arrays as <details> with a count in the <summary>, so a page reads and folds without
// JavaScript, and sensitive values masked (see mask.go) unless the page asks to reveal them.
// The styles are in assets/jsonview.css.
//
// The output is XHTML-compatible (every tag closed, attributes quoted, text escaped) and
// holds no style attribute and no script, for a strict Content-Security-Policy. Data only
// ever goes into text, never into an attribute.

// jsonViewOptions tune jsonHTML. The zero value is the default view: masked, open two
// levels deep, strings cut at 1,000 characters, 100 entries per object or array.
type jsonViewOptions struct {
	Reveal     bool // show sensitive values as they are
	OpenDepth  int  // <details> open down to this depth, the value itself being depth 1 (0: default 2; negative: all closed)
	MaxString  int  // longer strings are cut, with "… N more characters" (0: default 1000; negative: never cut)
	MaxEntries int  // objects/arrays show their first N entries then "… N more" (0: default 100; negative: all)
}

const (
	defaultOpenDepth  = 2
	defaultMaxString  = 1000
	defaultMaxEntries = 100
	// maxViewDepth is the deepest level rendered; deeper values show as "…".
	maxViewDepth = 64
	// maxViewBytes bounds the output: once it is reached, objects and arrays stop listing
	// entries. Checked between entries, so one entry may overshoot by its own size (bounded
	// by MaxString and the depth cap for the strings and nesting at that point).
	maxViewBytes = 2 << 20
)

// jsonHTML renders v as pretty, collapsible HTML inside <div class="jv">. v may be anything
// encoding/json decodes to (with or without UseNumber), int64 and the other Go number types,
// []map[string]any (a node's items, []engine.Item) and map[string]any (an engine.Item); any
// other type is shown as encoding/json encodes it, or as an error note when it cannot be
// encoded.
//
// Objects and arrays are <details class="j-obj|j-arr"> whose <summary> holds the entry's
// label and a count ("{3 keys}", "[1,000 items]"); empty ones are a plain "{}" or "[]".
// Object keys are listed in sorted (byte) order, array entries with their index. Scalars are
// spans classed by kind: j-str (JSON-quoted and escaped, so control and invisible characters
// show), j-num (as encoding/json prints it), j-bool, j-null; keys are j-key.
//
// Unless o.Reveal, a value under a sensitive key (the whole subtree) is replaced by
// <span class="j-masked" title="hidden: sensitive key">••••••••</span>, and credentials inside
// strings and keys by a j-masked span too; nothing of a hidden value reaches the output. A
// string equal to maskText (a value maskValue already hid) renders as hidden as well.
func jsonHTML(v any, o jsonViewOptions) template.HTML {
	r := viewRenderer{o: o}
	if r.o.OpenDepth == 0 {
		r.o.OpenDepth = defaultOpenDepth
	}
	if r.o.MaxString == 0 {
		r.o.MaxString = defaultMaxString
	}
	if r.o.MaxEntries == 0 {
		r.o.MaxEntries = defaultMaxEntries
	}
	r.b.Grow(1024)
	r.b.WriteString(`<div class="jv">`)
	r.value(v, 1, label{})
	r.b.WriteString(`</div>`)
	return template.HTML(r.b.String())
}

// jsonHTMLUnder renders v as the value found under key k: when k is sensitive (and v is not
// null or "") it is hidden as a whole unless o.Reveal. This is the call for values shown
// apart from their key — a static-data change is listed as key, before → after, and both
// sides go through jsonHTMLUnder with the change's key, so a sensitive key hides both. It
// renders the same as jsonHTML(maskUnder(k, v), o) does.
func jsonHTMLUnder(k string, v any, o jsonViewOptions) template.HTML {
	if !o.Reveal && isSensitiveKey(k) && hidesValue(v) {
		v = maskText
	}
	return jsonHTML(v, o)
}

// label is what an entry is shown under: its key, its index, or nothing for the value
// itself.
type label struct {
	kind  labelKind
	key   string
	index int
}

type labelKind uint8

const (
	noLabel labelKind = iota
	keyLabel
	indexLabel
)

const (
	maskedKeySpan  = `<span class="j-masked" title="hidden: sensitive key">` + maskText + `</span>`
	maskedTextSpan = `<span class="j-masked" title="hidden: credential in text">` + maskText + `</span>`
)

type viewRenderer struct {
	o jsonViewOptions
	b strings.Builder
}

func (r *viewRenderer) label(l label) {
	switch l.kind {
	case keyLabel:
		r.str(l.key, "j-key")
		r.b.WriteString(": ")
	case indexLabel:
		r.b.WriteString(`<span class="j-idx">`)
		r.b.WriteString(strconv.Itoa(l.index))
		r.b.WriteString(`</span>: `)
	}
}

func (r *viewRenderer) value(v any, depth int, l label) {
	if depth > maxViewDepth {
		r.label(l)
		r.b.WriteString(`<span class="j-deep" title="nested more than ` + strconv.Itoa(maxViewDepth) + ` levels deep">…</span>`)
		return
	}
	switch x := v.(type) {
	case nil:
		r.scalar(l, "j-null", "null")
	case bool:
		r.scalar(l, "j-bool", strconv.FormatBool(x))
	case string:
		r.label(l)
		r.str(x, "j-str")
	case float64:
		r.number(l, x, 64)
	case float32:
		r.number(l, float64(x), 32)
	case int, int8, int16, int32, int64:
		r.scalar(l, "j-num", strconv.FormatInt(reflect.ValueOf(x).Int(), 10))
	case uint, uint8, uint16, uint32, uint64, uintptr:
		r.scalar(l, "j-num", strconv.FormatUint(reflect.ValueOf(x).Uint(), 10))
	case json.Number:
		r.label(l)
		r.b.WriteString(`<span class="j-num">`)
		writeEscaped(&r.b, string(x))
		r.b.WriteString(`</span>`)
	case map[string]any:
		if x == nil {
			r.scalar(l, "j-null", "null")
			return
		}
		r.object(x, depth, l)
	case []any:
		if x == nil {
			r.scalar(l, "j-null", "null")
			return
		}
		renderArray(r, x, depth, l)
	case []map[string]any:
		if x == nil {
			r.scalar(l, "j-null", "null")
			return
		}
		renderArray(r, x, depth, l)
	default:
		plain, ok := toJSONValue(v)
		if !ok {
			r.label(l)
			r.b.WriteString(`<span class="j-err">unrenderable value of type `)
			writeEscaped(&r.b, fmt.Sprintf("%T", v))
			r.b.WriteString(`</span>`)
			return
		}
		r.value(plain, depth, l)
	}
}

// scalar writes a label and a span of class class holding text, which needs no escaping.
func (r *viewRenderer) scalar(l label, class, text string) {
	r.label(l)
	r.b.WriteString(`<span class="`)
	r.b.WriteString(class)
	r.b.WriteString(`">`)
	r.b.WriteString(text)
	r.b.WriteString(`</span>`)
}

// number writes f as encoding/json does (which rejects NaN and infinities; they show as Go
// prints them).
func (r *viewRenderer) number(l label, f float64, bits int) {
	r.label(l)
	r.b.WriteString(`<span class="j-num">`)
	var buf [32]byte
	r.b.Write(appendJSONFloat(buf[:0], f, bits))
	r.b.WriteString(`</span>`)
}

// appendJSONFloat formats f like encoding/json: the shortest exact representation, with an
// exponent only below 1e-6 or from 1e21 on, and "e-7" rather than "e-07".
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendFloat(b, f, 'g', -1, bits)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// open writes the start of a container: <details> (open at shallow depths), its summary with
// the label and count, and the list.
func (r *viewRenderer) open(class string, depth int, l label, count string) {
	r.b.WriteString(`<details class="`)
	r.b.WriteString(class)
	if depth <= r.o.OpenDepth {
		r.b.WriteString(`" open="open"><summary>`)
	} else {
		r.b.WriteString(`"><summary>`)
	}
	r.label(l)
	r.b.WriteString(`<span class="j-count">`)
	r.b.WriteString(count)
	r.b.WriteString(`</span></summary><ul class="j-list">`)
}

// more writes the last list entry of a container that shows fewer than all its entries, and
// reports whether it did.
func (r *viewRenderer) more(shown, total int, noun string) bool {
	limited := r.o.MaxEntries >= 0 && shown >= r.o.MaxEntries
	full := r.b.Len() > maxViewBytes
	if !limited && !full {
		return false
	}
	r.b.WriteString(`<li class="j-more">… `)
	r.b.WriteString(groupDigits(total - shown))
	r.b.WriteString(" more ")
	r.b.WriteString(noun)
	if full && !limited {
		r.b.WriteString(" (output limit reached)")
	}
	r.b.WriteString(`</li>`)
	return true
}

func (r *viewRenderer) object(m map[string]any, depth int, l label) {
	if len(m) == 0 {
		r.label(l)
		r.b.WriteString(`<span class="j-empty">{}</span>`)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	r.open("j-obj", depth, l, "{"+countNoun(len(m), "key", "keys")+"}")
	pair := !r.o.Reveal && namesSecret(m)
	for i, k := range keys {
		if r.more(i, len(keys), plural(len(keys)-i, "key", "keys")) {
			break
		}
		r.b.WriteString(`<li>`)
		v := m[k]
		if !r.o.Reveal && hiddenEntry(k, v, pair) {
			r.label(label{kind: keyLabel, key: k})
			r.b.WriteString(maskedKeySpan)
		} else {
			r.value(v, depth+1, label{kind: keyLabel, key: k})
		}
		r.b.WriteString(`</li>`)
	}
	r.b.WriteString(`</ul></details>`)
}

func renderArray[T any](r *viewRenderer, xs []T, depth int, l label) {
	if len(xs) == 0 {
		r.label(l)
		r.b.WriteString(`<span class="j-empty">[]</span>`)
		return
	}
	r.open("j-arr", depth, l, "["+countNoun(len(xs), "item", "items")+"]")
	for i, x := range xs {
		if r.more(i, len(xs), plural(len(xs)-i, "item", "items")) {
			break
		}
		r.b.WriteString(`<li>`)
		r.value(x, depth+1, label{kind: indexLabel, index: i})
		r.b.WriteString(`</li>`)
	}
	r.b.WriteString(`</ul></details>`)
}

// str writes s JSON-quoted in a span of class class, credentials masked unless revealing,
// cut after MaxString characters.
func (r *viewRenderer) str(s, class string) {
	if s == maskText {
		r.b.WriteString(maskedKeySpan)
		return
	}
	var spans []span
	if !r.o.Reveal {
		spans = credentialSpans(s)
	}
	cut := len(s)
	if limit := r.o.MaxString; limit >= 0 && len(s) > limit {
		n := 0
		for i := range s {
			if n == limit {
				cut = i
				break
			}
			n++
		}
	}
	r.b.WriteString(`<span class="`)
	r.b.WriteString(class)
	r.b.WriteString(`">"`)
	pos := 0
	for _, sp := range spans {
		if sp.start >= cut {
			break
		}
		writeEscaped(&r.b, s[pos:sp.start])
		r.b.WriteString(maskedTextSpan)
		pos = sp.end
		cut = max(cut, pos) // a credential across the cut is hidden whole, then cut
	}
	writeEscaped(&r.b, s[pos:cut])
	if cut == len(s) {
		r.b.WriteString(`"</span>`)
		return
	}
	r.b.WriteString(`</span><span class="j-cut">… `)
	r.b.WriteString(groupDigits(utf8.RuneCountInString(s[cut:])))
	r.b.WriteString(` more characters</span>`)
}

// writeEscaped writes s as the inside of a JSON string, HTML-escaped: quotes and
// backslashes escaped as JSON escapes them, control characters, invisible and
// direction-changing characters as \uXXXX (so what the page shows is what the value holds),
// invalid UTF-8 as \ufffd, and &, <, > as entities.
func writeEscaped(b *strings.Builder, s string) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc string
			switch c {
			case '"':
				esc = `\"`
			case '\\':
				esc = `\\`
			case '<':
				esc = "&lt;"
			case '>':
				esc = "&gt;"
			case '&':
				esc = "&amp;"
			case '\n':
				esc = `\n`
			case '\r':
				esc = `\r`
			case '\t':
				esc = `\t`
			default:
				if c >= 0x20 && c != 0x7f {
					i++
					continue
				}
			}
			b.WriteString(s[start:i])
			if esc != "" {
				b.WriteString(esc)
			} else {
				writeUnicodeEscape(b, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || invisible(r) {
			b.WriteString(s[start:i])
			writeUnicodeEscape(b, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
}

func writeUnicodeEscape(b *strings.Builder, r rune) {
	const hex = "0123456789abcdef"
	b.WriteString(`\u`)
	b.WriteByte(hex[r>>12&0xf])
	b.WriteByte(hex[r>>8&0xf])
	b.WriteByte(hex[r>>4&0xf])
	b.WriteByte(hex[r&0xf])
}

// invisible reports whether r is a character the view escapes although JSON need not: C1
// controls, zero-width and direction-changing characters, line and paragraph separators, the
// byte order mark, and the non-characters XML forbids.
func invisible(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f,
		r >= 0x200b && r <= 0x200f,
		r >= 0x2028 && r <= 0x202e,
		r >= 0x2060 && r <= 0x2069,
		r == 0xfeff,
		r >= 0xfff9 && r <= 0xfffb,
		r == 0xfffe, r == 0xffff:
		return true
	}
	return false
}

// countNoun returns "1 key", "3 keys", "1,000 items".
func countNoun(n int, one, many string) string {
	return groupDigits(n) + " " + plural(n, one, many)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// groupDigits formats a count n ≥ 0 with commas between groups of three digits.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	head := len(s) % 3
	if head == 0 {
		head = 3
	}
	b.WriteString(s[:head])
	for i := head; i < len(s); i += 3 {
		b.WriteByte(',')
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
