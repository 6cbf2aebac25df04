package storage

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
)

// encodeJSON renders v as compact JSON without HTML escaping, the form payloads are stored in.
func encodeJSON(v any) ([]byte, error) { return engine.MarshalJSON(v) }

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
