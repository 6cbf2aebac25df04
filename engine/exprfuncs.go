package engine

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
)

// The helper functions expressions may call, beyond expr's builtins (len, upper, date,
// duration, now, toJSON, fromJSON, …). Names in methodSugar may also be called method-style:
// $now.minus(1, 'minute') is minus($now, 1, 'minute').
var exprFuncs = []struct {
	name string
	fn   func(args ...any) (any, error)
}{
	{"toDateTime", fnToDateTime},
	{"plus", func(a ...any) (any, error) { return shiftTime(a, 1) }},
	{"minus", func(a ...any) (any, error) { return shiftTime(a, -1) }},
	{"toISO", fnToISO},
	{"toMillis", fnToMillis},
	{"toSeconds", fnToSeconds},
	{"fromMillis", fnFromMillis},
	{"format", fnFormat},
	{"startOf", func(a ...any) (any, error) { return truncTime(a, false) }},
	{"endOf", func(a ...any) (any, error) { return truncTime(a, true) }},
	{"diff", fnDiff},
	{"isBefore", func(a ...any) (any, error) { return compareTimes(a, func(c int) bool { return c < 0 }) }},
	{"isAfter", func(a ...any) (any, error) { return compareTimes(a, func(c int) bool { return c > 0 }) }},
	{"isEmpty", fnIsEmpty},
	{"fail", fnFail},
}

// methodSugar names the helpers that may be called as methods.
var methodSugar = map[string]bool{
	"toDateTime": true, "plus": true, "minus": true, "toISO": true, "toMillis": true,
	"toSeconds": true, "format": true, "startOf": true, "endOf": true, "diff": true,
	"isBefore": true, "isAfter": true, "first": true, "last": true, "all": true, "isEmpty": true,
}

// methodOnly are helpers registered only under their method name ($input.first()), because
// expr has builtins called first, last and all.
var methodOnly = []struct {
	name string
	fn   func(args ...any) (any, error)
}{
	{"first", func(a ...any) (any, error) { return listEnd(a, false) }},
	{"last", func(a ...any) (any, error) { return listEnd(a, true) }},
	{"all", fnAll},
}

func argCount(name string, args []any, lo, hi int) error {
	if len(args) < lo || len(args) > hi {
		if lo == hi {
			return fmt.Errorf("%s: want %d arguments, got %d", name, lo, len(args))
		}
		return fmt.Errorf("%s: want %d to %d arguments, got %d", name, lo, hi, len(args))
	}
	return nil
}

// ParseDateTime reads a date and time the way n8n's If node does: a time value as it is, else
// text in ISO 8601 (full, date only, or without offset — then in loc), HTTP/RFC 1123, RFC 2822
// or SQL form. Numbers are not taken as epoch times (use fromMillis). It fails on anything else,
// including the empty string.
func ParseDateTime(v any, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case *time.Time:
		if x != nil {
			return *x, nil
		}
	}
	s := strings.TrimSpace(FormatValue(v))
	for _, layout := range dateLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s can't be converted to a dateTime", describe(v))
}

var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02",
	"20060102T150405Z0700",
	"20060102T1504",
	"20060102",
	time.RFC1123,
	time.RFC1123Z,
	time.RFC850,
	time.ANSIC,
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 -07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
}

// JSONKind names a JSON value's kind for messages: "null", "a string", "a boolean",
// "a number", "a list" or "an object".
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any, []Item:
		return "a list"
	case map[string]any:
		return "an object"
	}
	if _, ok := toFloat(v); ok {
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

// describe names a value for error messages: the string 'x', the number 3, …
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string '%s'", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int, int64, float64:
		return fmt.Sprintf("the number %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("the value %v", v)
}

func fnToDateTime(a ...any) (any, error) {
	if err := argCount("toDateTime", a, 1, 1); err != nil {
		return nil, err
	}
	return ParseDateTime(a[0], time.Local)
}

func timeArg(name string, v any) (time.Time, error) {
	t, err := ParseDateTime(v, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// durationUnit maps Luxon-style unit names (singular, plural, short) to a canonical one.
func durationUnit(u string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(u)) {
	case "ms", "millisecond", "milliseconds":
		return "ms", nil
	case "s", "sec", "secs", "second", "seconds":
		return "s", nil
	case "m", "min", "mins", "minute", "minutes":
		return "m", nil
	case "h", "hr", "hrs", "hour", "hours":
		return "h", nil
	case "d", "day", "days":
		return "d", nil
	case "w", "week", "weeks":
		return "w", nil
	case "month", "months":
		return "month", nil
	case "y", "year", "years":
		return "y", nil
	}
	return "", fmt.Errorf("unknown unit %q (want ms, second, minute, hour, day, week, month or year)", u)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int32:
		return float64(x), true
	case float32:
		return float64(x), true
	}
	return 0, false
}

// shiftTime implements plus and minus: (t, n, unit), (t, duration) or (t, "90s").
func shiftTime(a []any, sign int) (any, error) {
	name := "plus"
	if sign < 0 {
		name = "minus"
	}
	if err := argCount(name, a, 2, 3); err != nil {
		return nil, err
	}
	t, err := timeArg(name, a[0])
	if err != nil {
		return nil, err
	}
	if len(a) == 2 {
		var d time.Duration
		switch x := a[1].(type) {
		case time.Duration:
			d = x
		case string:
			if d, err = time.ParseDuration(x); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		default:
			return nil, fmt.Errorf("%s: want a duration or (amount, unit), got %s", name, describe(a[1]))
		}
		return t.Add(time.Duration(sign) * d), nil
	}
	n, ok := toFloat(a[1])
	if !ok {
		return nil, fmt.Errorf("%s: amount must be a number, got %s", name, describe(a[1]))
	}
	unit, ok := a[2].(string)
	if !ok {
		return nil, fmt.Errorf("%s: unit must be a string, got %s", name, describe(a[2]))
	}
	u, err := durationUnit(unit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n *= float64(sign)
	switch u {
	case "month":
		return t.AddDate(0, int(n), 0), nil
	case "y":
		return t.AddDate(int(n), 0, 0), nil
	case "d":
		if n == math.Trunc(n) {
			return t.AddDate(0, 0, int(n)), nil // calendar days keep the wall clock across DST
		}
	}
	return t.Add(time.Duration(n * float64(unitDuration[u]))), nil
}

var unitDuration = map[string]time.Duration{
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
	"d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

func fnToISO(a ...any) (any, error) {
	if err := argCount("toISO", a, 1, 1); err != nil {
		return nil, err
	}
	t, err := timeArg("toISO", a[0])
	if err != nil {
		return nil, err
	}
	return FormatTime(t), nil
}

func fnToMillis(a ...any) (any, error) {
	if err := argCount("toMillis", a, 1, 1); err != nil {
		return nil, err
	}
	t, err := timeArg("toMillis", a[0])
	if err != nil {
		return nil, err
	}
	return t.UnixMilli(), nil
}

func fnToSeconds(a ...any) (any, error) {
	if err := argCount("toSeconds", a, 1, 1); err != nil {
		return nil, err
	}
	t, err := timeArg("toSeconds", a[0])
	if err != nil {
		return nil, err
	}
	return t.Unix(), nil
}

func fnFromMillis(a ...any) (any, error) {
	if err := argCount("fromMillis", a, 1, 1); err != nil {
		return nil, err
	}
	n, ok := toFloat(a[0])
	if !ok {
		return nil, fmt.Errorf("fromMillis: want a number, got %s", describe(a[0]))
	}
	return time.UnixMilli(int64(n)), nil
}

// fnFormat formats a time with a Go layout ("2006-01-02 15:04").
func fnFormat(a ...any) (any, error) {
	if err := argCount("format", a, 2, 2); err != nil {
		return nil, err
	}
	t, err := timeArg("format", a[0])
	if err != nil {
		return nil, err
	}
	layout, ok := a[1].(string)
	if !ok {
		return nil, fmt.Errorf("format: layout must be a string")
	}
	return t.Format(layout), nil
}

func truncTime(a []any, end bool) (any, error) {
	name := "startOf"
	if end {
		name = "endOf"
	}
	if err := argCount(name, a, 2, 2); err != nil {
		return nil, err
	}
	t, err := timeArg(name, a[0])
	if err != nil {
		return nil, err
	}
	unit, _ := a[1].(string)
	u, err := durationUnit(unit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	y, mo, d := t.Date()
	loc := t.Location()
	var start, next time.Time
	switch u {
	case "y":
		start = time.Date(y, 1, 1, 0, 0, 0, 0, loc)
		next = start.AddDate(1, 0, 0)
	case "month":
		start = time.Date(y, mo, 1, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 1, 0)
	case "w":
		wd := (int(t.Weekday()) + 6) % 7 // weeks start on Monday, as in ISO 8601
		start = time.Date(y, mo, d-wd, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 0, 7)
	case "d":
		start = time.Date(y, mo, d, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 0, 1)
	default:
		start = t.Truncate(unitDuration[u])
		next = start.Add(unitDuration[u])
	}
	if end {
		return next.Add(-time.Millisecond), nil
	}
	return start, nil
}

// fnDiff returns a − b in the unit (default milliseconds), as a number.
func fnDiff(a ...any) (any, error) {
	if err := argCount("diff", a, 2, 3); err != nil {
		return nil, err
	}
	x, err := timeArg("diff", a[0])
	if err != nil {
		return nil, err
	}
	y, err := timeArg("diff", a[1])
	if err != nil {
		return nil, err
	}
	u := "ms"
	if len(a) == 3 {
		s, _ := a[2].(string)
		if u, err = durationUnit(s); err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
	}
	d := x.Sub(y)
	switch u {
	case "month":
		return d.Hours() / 24 / 30.436875, nil
	case "y":
		return d.Hours() / 24 / 365.2425, nil
	}
	return float64(d) / float64(unitDuration[u]), nil
}

func compareTimes(a []any, ok func(int) bool) (any, error) {
	if err := argCount("isBefore/isAfter", a, 2, 2); err != nil {
		return nil, err
	}
	x, err := timeArg("compare", a[0])
	if err != nil {
		return nil, err
	}
	y, err := timeArg("compare", a[1])
	if err != nil {
		return nil, err
	}
	return ok(x.Compare(y)), nil
}

func listEnd(a []any, last bool) (any, error) {
	if err := argCount("first/last", a, 1, 1); err != nil {
		return nil, err
	}
	rv := reflect.ValueOf(a[0])
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("first/last: want a list, got %s", describe(a[0]))
	}
	if rv.Len() == 0 {
		return nil, nil
	}
	if last {
		return rv.Index(rv.Len() - 1).Interface(), nil
	}
	return rv.Index(0).Interface(), nil
}

func fnAll(a ...any) (any, error) {
	if err := argCount("all", a, 1, 1); err != nil {
		return nil, err
	}
	return a[0], nil
}

func fnIsEmpty(a ...any) (any, error) {
	if err := argCount("isEmpty", a, 1, 1); err != nil {
		return nil, err
	}
	return IsEmpty(a[0]), nil
}

// IsEmpty is true for null, "", empty lists and empty objects.
func IsEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array:
		return rv.Len() == 0
	}
	return false
}

// errFail is what fail() raises; the message is the caller's.
var errFail = errors.New("fail")

func fnFail(a ...any) (any, error) {
	msg := "fail() called"
	if len(a) > 0 {
		msg = FormatValue(a[0])
	}
	return nil, fmt.Errorf("%w: %s", errFail, msg)
}
