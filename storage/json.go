package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
)

// encodeJSON renders v as compact JSON without HTML escaping, the form payloads are stored in.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// decodeJSON decodes stored JSON into dst, numbers in untyped values as engine.PlainNumbers
// makes them, so integers keep full precision. dst is one of *any, *[]engine.Item, *[][]engine.Item,
// *[]engine.StaticChange or a pointer to a typed value without untyped parts.
func decodeJSON(data []byte, dst any) error {
	if d, ok := dst.(*any); ok {
		if v, ok := plainString(data); ok {
			*d = v
			return nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	switch d := dst.(type) {
	case *any:
		*d = engine.PlainNumbers(*d)
	case *[]engine.Item:
		for _, item := range *d {
			engine.PlainNumbers(item)
		}
	case *[][]engine.Item:
		for _, port := range *d {
			for _, item := range port {
				engine.PlainNumbers(item)
			}
		}
	case *[]engine.StaticChange:
		for i := range *d {
			(*d)[i].Before = engine.PlainNumbers((*d)[i].Before)
			(*d)[i].After = engine.PlainNumbers((*d)[i].After)
		}
	}
	return nil
}

// plainString decodes a JSON string that has no escapes and valid UTF-8, the common static
// value (a token, a time), without a decoder; ok is false for anything else.
func plainString(data []byte) (v string, ok bool) {
	n := len(data)
	if n < 2 || data[0] != '"' || data[n-1] != '"' {
		return "", false
	}
	body := data[1 : n-1]
	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// appendValue appends v's JSON to b exactly as encodeJSON renders it, without reflection for
// the types items hold (objects, arrays, strings, numbers, booleans, null); other types go
// through encodeJSON.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		return appendFloat(b, x)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendString(b, k), ':')
			var err error
			if b, err = appendValue(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	e, err := encodeJSON(v)
	if err != nil {
		return nil, err
	}
	return append(b, e...), nil
}

// appendFloat formats f as encoding/json does: the shortest form that reads back the same,
// with an exponent only for very small or large magnitudes.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
