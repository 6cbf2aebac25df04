// Package redact hides secrets in what flowd writes down and shows: run records before they
// are stored, log lines, the UI and the API. It is one definition of "secret" for all of
// them:
//
//   - the values of the configured secrets ($secrets.NAME), wherever they stand, become
//     "[$secrets.NAME]";
//   - values under sensitive keys (accessToken, client_secret, Authorization, X-API-Key…;
//     see Keys) become Mask as a whole, objects and lists included;
//   - credentials inside text become Mask: "Bearer …", "Basic …", JSON Web Tokens, the value
//     after a sensitive name and "=" or ":" (a form body, a header line, JSON printed into a
//     message), the password of a URL (see CredentialSpans).
//
// The rules lean towards hiding: a record that hides a harmless value costs a look at the
// live data; one that keeps a token leaks it. Null and the empty string are never hidden:
// they hold no secret, and "accessToken: null" is what one looks for when a refresh failed.
//
// The package depends on nothing else in flowd, so the engine, the web layer and the log
// handler share it.
package redact

import (
	"sort"
	"strings"
)

// MinSecretLen is the shortest secret value redacted by value. Shorter values would match
// by chance all over a record ("1", "true"), and replacing them would both garble the record
// and tell where the secret's characters stand; they are still hidden under sensitive keys.
const MinSecretLen = 4

// Redactor masks secret values and sensitive keys. Its rules never change once made, and it
// is safe for concurrent use; one made by New remembers its recent answers (remembered). A nil
// *Redactor masks by the process's key rules (see SetKeys) and knows no secret values.
type Redactor struct {
	keys    *Keys
	secrets []secretValue // longest first
	rep     *strings.Replacer
	short   []string
	masked  *remembered[string] // String's answers; nil for the Redactor orDefault makes up
}

type secretValue struct{ name, value string }

// New returns a Redactor that hides the values of secrets (name → value) and values under
// the keys keys names sensitive (nil: the built-in rules). Values shorter than MinSecretLen
// are not redacted by value; Short lists their names.
func New(keys *Keys, secrets map[string]string) *Redactor {
	if keys == nil {
		keys = defaultKeys
	}
	r := &Redactor{keys: keys, masked: newRemembered[string]()}
	seen := map[string]bool{}
	names := make([]string, 0, len(secrets))
	for name := range secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := secrets[name]
		if len(v) < MinSecretLen {
			r.short = append(r.short, name)
			continue
		}
		if seen[v] { // two names, one value: the first name stands for both
			continue
		}
		seen[v] = true
		r.secrets = append(r.secrets, secretValue{name, v})
	}
	// Longest first, so that a secret containing another is replaced whole.
	sort.SliceStable(r.secrets, func(i, j int) bool { return len(r.secrets[i].value) > len(r.secrets[j].value) })
	if len(r.secrets) > 0 {
		oldnew := make([]string, 0, 2*len(r.secrets))
		for _, s := range r.secrets {
			oldnew = append(oldnew, s.value, Placeholder(s.name))
		}
		r.rep = strings.NewReplacer(oldnew...)
	}
	return r
}

// Placeholder is what stands for the value of the secret name in redacted text.
func Placeholder(name string) string { return "[$secrets." + name + "]" }

// Short returns the names of the secrets whose values are too short to redact by value.
func (r *Redactor) Short() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.short...)
}

// Keys returns the key rules r masks by.
func (r *Redactor) Keys() *Keys {
	if r == nil {
		return CurrentKeys()
	}
	return r.keys
}

func (r *Redactor) orDefault() *Redactor {
	if r == nil {
		return &Redactor{keys: CurrentKeys()}
	}
	return r
}

// String returns s with every secret value replaced by its Placeholder and every credential
// in it (see CredentialSpans) by Mask.
func (r *Redactor) String(s string) string {
	r = r.orDefault()
	if r.rep != nil && r.holdsSecret(s) {
		s = r.rep.Replace(s)
	}
	return maskText(s, r.keys)
}

// Message is String for flowd's own messages and log lines: secret values and credentials
// hide as in String, but prose after "name:" — Go's error style — stays readable (see
// maskProse).
func (r *Redactor) Message(s string) string {
	r = r.orDefault()
	if r.rep != nil && r.holdsSecret(s) {
		s = r.rep.Replace(s)
	}
	return maskProse(s, r.keys)
}

// holdsSecret reports whether s contains a secret value; it spares the common case the
// Replacer's allocation.
func (r *Redactor) holdsSecret(s string) bool {
	for _, sv := range r.secrets {
		if len(s) < len(sv.value) {
			continue
		}
		if strings.Contains(s, sv.value) {
			return true
		}
	}
	return false
}

// Value returns a redacted deep copy of v; v is not modified. Every value under a sensitive
// key, at any depth, is replaced by Mask as a whole; so is the "value" of an object that
// names a sensitive header or field ({"name": "Authorization", "value": "…"}). Strings, and
// keys, go through String. Maps and slices of the types encoding/json decodes to (and
// []map[string]any) are copied as the same types; any other type is first converted through
// encoding/json (Plain). A value that cannot be converted, or that nests deeper than 20,000
// levels (a cycle), comes back as Mask as a whole.
//
// For a value shown apart from its key — a static-data change shown as key, before → after —
// use Under(key, before) and Under(key, after): a sensitive key hides both sides.
func (r *Redactor) Value(v any) any {
	m := masker{r: r.orDefault()}
	out := m.value(v, 0)
	if m.failed {
		return Mask
	}
	return out
}

// Object is Value for one object, such as an item; nil stays nil.
func (r *Redactor) Object(v map[string]any) map[string]any {
	if v == nil {
		return nil
	}
	m := masker{r: r.orDefault()}
	out := m.object(v, 0)
	if m.failed {
		return map[string]any{"redacted": Mask}
	}
	return out
}

// ObjectShared is Object without copying what needs no masking: where nothing in an object or
// array is masked, the result holds that object or array itself, and when nothing in v is, it
// is v. It is for a caller that changes neither v nor the result afterwards — a finished run's
// record on its way to the store — and saves copying every item of every run.
func (r *Redactor) ObjectShared(v map[string]any) map[string]any {
	if v == nil {
		return nil
	}
	m := masker{r: r.orDefault(), share: true}
	out := m.object(v, 0)
	if m.failed {
		return map[string]any{"redacted": Mask}
	}
	return out
}

// Under redacts v as the value found under key k: Mask when k is sensitive (and v is not
// null or ""), else Value(v).
func (r *Redactor) Under(k string, v any) any {
	r = r.orDefault()
	if r.keys.Sensitive(k) && HidesValue(v) {
		return Mask
	}
	return r.Value(v)
}
