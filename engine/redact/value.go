package redact

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
)

// Mask stands in for a hidden value: under a sensitive key, or a credential in text.
const Mask = "••••••••"

// HidesValue reports whether a value must be hidden under a sensitive key: anything but null
// and the empty string, which hold no secret ("accessToken: null" is exactly what one looks
// for when a refresh went wrong).
func HidesValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	}
	return true
}

// NamesSecret reports whether object m is a name/value pair naming a secret, the way header
// and query lists are written ([{"name": "Authorization", "value": "Bearer …"}]): then its
// "value" is hidden as if it stood under that name. It uses the process's key rules.
func NamesSecret(m map[string]any) bool { return namesSecret(m, CurrentKeys()) }

func namesSecret(m map[string]any, keys *Keys) bool {
	if _, ok := m["value"]; !ok {
		return false
	}
	for _, k := range [...]string{"name", "key"} {
		if s, ok := m[k].(string); ok && keys.Sensitive(s) {
			return true
		}
	}
	return false
}

// HiddenEntry reports whether the entry k: v of an object is hidden as a whole; pair is
// NamesSecret of the object. It uses the process's key rules.
func HiddenEntry(k string, v any, pair bool) bool { return hiddenEntry(k, v, pair, CurrentKeys()) }

func hiddenEntry(k string, v any, pair bool, keys *Keys) bool {
	return HidesValue(v) && (keys.Sensitive(k) || pair && k == "value")
}

// maxDepth bounds the masker's recursion. Values decoded by encoding/json nest at most
// 10,000 levels; anything deeper was built in Go, most likely with a cycle.
const maxDepth = 20_000

// Value returns a masked deep copy of v by the process's key rules, with no secret values
// (see Redactor.Value): every value under a sensitive key, at any depth, is replaced by Mask
// as a whole, and credentials inside strings (see CredentialSpans) too; v is not modified.
func Value(v any) any { return (&Redactor{keys: CurrentKeys()}).Value(v) }

// Under masks v as the value found under key k, by the process's key rules: Mask when k is
// sensitive (and v not null or ""), else Value(v).
func Under(k string, v any) any { return (&Redactor{keys: CurrentKeys()}).Under(k, v) }

// String returns s with every credential in it (see CredentialSpans) replaced by Mask, by
// the process's key rules.
func String(s string) string { return maskText(s, CurrentKeys()) }

// masker makes one masked copy.
type masker struct {
	r      *Redactor
	failed bool
	// share returns the objects and arrays in which nothing is masked as they are, rather
	// than copies (Redactor.ObjectShared).
	share bool
}

// unchanged reports whether the masker returned v as it is: the same string or scalar, or
// the same object or array (same map, same backing array).
func unchanged(masked, v any) bool {
	switch x := v.(type) {
	case nil, bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16,
		uint32, uint64, uintptr, json.Number, string:
		return masked == v
	case map[string]any:
		m, ok := masked.(map[string]any)
		return ok && len(m) == len(x) && (len(x) == 0 || reflect.ValueOf(m).UnsafePointer() == reflect.ValueOf(x).UnsafePointer())
	case []any:
		s, ok := masked.([]any)
		return ok && len(s) == len(x) && (len(x) == 0 || &s[0] == &x[0])
	case []map[string]any:
		s, ok := masked.([]map[string]any)
		return ok && len(s) == len(x) && (len(x) == 0 || &s[0] == &x[0])
	}
	return false
}

func (m *masker) value(v any, depth int) any {
	if m.failed {
		return nil
	}
	if depth > maxDepth {
		m.failed = true
		return nil
	}
	switch x := v.(type) {
	case nil, bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16,
		uint32, uint64, uintptr, json.Number:
		return x
	case string:
		return m.r.maskString(x)
	case map[string]any:
		return m.object(x, depth)
	case []any:
		if x == nil {
			return x
		}
		first, masked := -1, any(nil)
		if m.share {
			if first, masked = m.firstChange(x, depth); first < 0 {
				return x
			}
		}
		out := make([]any, len(x))
		for i, e := range x {
			switch {
			case i < first:
				out[i] = e // unchanged by masking
			case i == first:
				out[i] = masked
			default:
				out[i] = m.value(e, depth+1)
			}
		}
		return out
	case []map[string]any:
		if x == nil {
			return x
		}
		out := make([]map[string]any, len(x))
		for i, e := range x {
			out[i] = m.object(e, depth+1)
		}
		return out
	}
	plain, ok := Plain(v)
	if !ok {
		m.failed = true
		return nil
	}
	return m.value(plain, depth)
}

func (m *masker) object(x map[string]any, depth int) map[string]any {
	if x == nil {
		return nil
	}
	keys := m.r.keys
	pair := namesSecret(x, keys)
	var changedKey string
	var changedValue any // the masked value of changedKey's entry; nil: mask it in the copy
	if m.share {
		k, mv, ok := m.firstChangeObject(x, pair, depth)
		if !ok {
			return x
		}
		changedKey, changedValue = k, mv
	}
	out := make(map[string]any, len(x))
	for k, e := range x {
		switch {
		case m.hidden(k, e, pair):
			e = Mask
		case m.share && k == changedKey && changedValue != nil:
			e = changedValue
		default:
			e = m.value(e, depth+1)
		}
		if mk := m.r.maskString(k); mk != k {
			// A key that is itself a credential (a cache keyed by token): two such keys
			// would collide once masked, so number the later ones.
			k = mk
			for n := 2; ; n++ {
				if _, taken := out[k]; !taken {
					break
				}
				k = mk + " #" + strconv.Itoa(n)
			}
		}
		out[k] = e
	}
	return out
}

// hidden is hiddenEntry by the masker's Redactor.
func (m *masker) hidden(k string, v any, pair bool) bool {
	return HidesValue(v) && (m.r.keys.Sensitive(k) || pair && k == "value")
}

// firstChange masks array x's elements in order up to the first that changes (share mode)
// and returns its index and masked value; -1 when none does, and x is kept as it is. Each
// element is masked once: the ones before it are unchanged, so the copy takes them as they
// are.
func (m *masker) firstChange(x []any, depth int) (int, any) {
	for i, e := range x {
		if me := m.value(e, depth+1); m.failed || !unchanged(me, e) {
			return i, me
		}
	}
	return -1, nil
}

// firstChangeObject is firstChange for object x, whose pair is namesSecret(x): the key of
// the first entry whose key or value masking changes, and the value masked; ok is false
// when none does. The copy masks the other entries again, which for the unchanged ones
// costs one more walk and no copy.
func (m *masker) firstChangeObject(x map[string]any, pair bool, depth int) (key string, masked any, ok bool) {
	for k, e := range x {
		if m.hidden(k, e, pair) || m.r.maskString(k) != k {
			return k, nil, true // the copy decides what the entry becomes
		}
		if me := m.value(e, depth+1); m.failed || !unchanged(me, e) {
			return k, me, true
		}
	}
	return "", nil, false
}

// Plain converts v of a type the masker does not walk (a struct, []string,
// map[string]string, time.Time) to what encoding/json decodes its encoding to, numbers as
// json.Number. It reports false when v cannot be encoded.
func Plain(v any) (any, bool) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, false
	}
	return out, true
}
