package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrTrailingJSON is DecodeJSON's error for data after the one JSON value.
var ErrTrailingJSON = errors.New("more than one JSON value")

// DecodeJSON decodes exactly one JSON value, numbers as PlainNumbers makes them. A truncated
// value is "unexpected end of JSON input", as json.Unmarshal says it, rather than a bare EOF.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("unexpected end of JSON input")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ErrTrailingJSON
	}
	return PlainNumbers(v), nil
}

// PlainNumbers replaces every json.Number in v (as decoded with UseNumber), changing maps and
// slices in place, and returns the converted value. A whole number that int64 holds becomes
// int64, any other float64; a number beyond float64's range keeps its json.Number literal
// rather than lose digits. This is the one rule for numbers everywhere flowd decodes JSON.
func PlainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return plainNumber(x)
	case map[string]any:
		for k, e := range x {
			x[k] = PlainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = PlainNumbers(e)
		}
	case []Item:
		for _, e := range x {
			PlainNumbers(e)
		}
	}
	return v
}

func plainNumber(n json.Number) any {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i
	}
	// 12.000 is the whole number 12, exactly, however many digits it has.
	if whole, frac, ok := strings.Cut(string(n), "."); ok && strings.Trim(frac, "0") == "" {
		if i, err := strconv.ParseInt(whole, 10, 64); err == nil {
			return i
		}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return n
	}
	if isInt64(f) {
		return int64(f)
	}
	return f
}

// isInt64 reports whether f is a whole number int64 holds. Every such float64 is exactly an
// integer, so the conversion loses nothing, and encoding/json writes it without a fraction or
// exponent: decoding it again gives the same int64.
func isInt64(f float64) bool {
	return f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64
}

// ItemsOf turns a decoded JSON value into items, the one rule for every place items come
// from outside a node (a Code node's return, `flowd run --input`, the API's manual run): an
// object is one item, a list is one item per element, null is none, and an n8n-style
// {"json": {...}} wrapper is taken off.
func ItemsOf(v any) ([]Item, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return []Item{unwrapN8nItem(x)}, nil
	case []any:
		out := make([]Item, 0, len(x))
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, &ItemsError{Index: i, Got: JSONKind(e)}
			}
			out = append(out, unwrapN8nItem(m))
		}
		return out, nil
	}
	return nil, &ItemsError{Index: -1, Got: JSONKind(v)}
}

// ItemsError is a value ItemsOf cannot turn into items.
type ItemsError struct {
	Index int    // the offending list element, or -1 for the value itself
	Got   string // its kind, as JSONKind names it
}

func (e *ItemsError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("element %d is %s, want an object", e.Index, e.Got)
	}
	return fmt.Sprintf("got %s, want an object, a list of objects or null", e.Got)
}

func unwrapN8nItem(m map[string]any) Item {
	if j, ok := m["json"].(map[string]any); ok && len(m) == 1 {
		return j
	}
	return m
}
