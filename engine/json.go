package engine

import (
	"encoding/json"
	"math"
	"strconv"
)

// PlainNumbers replaces every json.Number in v (as decoded with UseNumber), changing maps and
// slices in place, and returns the converted value. A whole number becomes int64, any other
// float64; a number beyond float64's range keeps its json.Number literal rather than lose
// digits. This is the one rule for numbers everywhere flowd decodes JSON.
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
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return n
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return f
}
