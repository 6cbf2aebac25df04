package web

import "github.com/flowd/flowd/engine/redact"

// This file decides what the UI hides. The rules themselves live in engine/redact, so that
// the UI, the run records the engine stores and the log lines hide the same things (and
// follow the same --redact-keys patterns); these are the names the web package uses them by.
//
// Two ways in, with the same rules:
//   - jsonHTML masks while it renders (nothing is copied);
//   - maskValue returns a masked deep copy, for anything else that shows values (a JSON
//     answer, a log line).
//
// Run records are redacted before they are stored, so what the UI reads of them is masked
// already (and "reveal" cannot bring it back); static data keeps its real values, and the UI
// masks them here.

// maskText stands in for a hidden value.
const maskText = redact.Mask

// isSensitiveKey reports whether values under key k are secret (redact.IsSensitiveKey).
func isSensitiveKey(k string) bool { return redact.IsSensitiveKey(k) }

// hidesValue reports whether a value must be hidden under a sensitive key: anything but null
// and the empty string.
func hidesValue(v any) bool { return redact.HidesValue(v) }

// namesSecret reports whether object m is a name/value pair naming a secret
// ([{"name": "Authorization", "value": "Bearer …"}]).
func namesSecret(m map[string]any) bool { return redact.NamesSecret(m) }

// hiddenEntry reports whether the entry k of object m is hidden; pair is namesSecret(m).
func hiddenEntry(k string, v any, pair bool) bool { return redact.HiddenEntry(k, v, pair) }

// maskValue returns a masked deep copy of v (redact.Value); v is not modified. For a value
// shown apart from its key, use maskUnder.
func maskValue(v any) any { return redact.Value(v) }

// maskUnder masks v as the value found under key k (redact.Under).
func maskUnder(k string, v any) any { return redact.Under(k, v) }

// toJSONValue converts v of a type jsonHTML does not know to plain JSON values (redact.Plain).
func toJSONValue(v any) (any, bool) { return redact.Plain(v) }

// span is a byte range [start, end) of a string.
type span struct{ start, end int }

// credentialSpans returns the byte ranges of s that hold credentials, in order and not
// overlapping, or nil (redact.CredentialSpans).
func credentialSpans(s string) []span {
	found := redact.CredentialSpans(s)
	if found == nil {
		return nil
	}
	out := make([]span, len(found))
	for i, sp := range found {
		out[i] = span{sp.Start, sp.End}
	}
	return out
}
