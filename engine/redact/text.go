package redact

import "strings"

// maskText returns s with every credential span (see CredentialSpans) replaced by Mask,
// sensitive names judged by keys.
func maskText(s string, keys *Keys) string { return maskSpans(s, credentialSpans(s, keys, false)) }

// maskProse is maskText for flowd's own messages, which separate context with ": " in Go's
// error style (`load static data: key "accessToken": sealed with…`): after a sensitive
// name and ":", only a quoted value, a {…} or […], or a single word hides; prose runs on.
func maskProse(s string, keys *Keys) string { return maskSpans(s, credentialSpans(s, keys, true)) }

// maskSpans replaces the spans of s with Mask.
func maskSpans(s string, spans []Span) string {
	if spans == nil {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pos := 0
	for _, sp := range spans {
		b.WriteString(s[pos:sp.Start])
		b.WriteString(Mask)
		pos = sp.End
	}
	b.WriteString(s[pos:])
	return b.String()
}

// Span is a byte range [Start, End) of a string.
type Span struct{ Start, End int }

// A name before "=" or ":" is read only when it is minNameLen to maxNameLen bytes long: no
// shorter key is sensitive ("pin"), and maxNameLen bounds how far a scan looks back.
const (
	minNameLen = 3
	maxNameLen = 64
)

// CredentialSpans returns the byte ranges of s that hold credentials, by the process's key
// rules (see SetKeys). See credentialSpans.
func CredentialSpans(s string) []Span { return credentialSpans(s, CurrentKeys(), false) }

// credentialSpans returns the byte ranges of s that hold credentials, in order and not
// overlapping, or nil. It finds:
//   - the credentials after an HTTP auth scheme: "Bearer <token>", and "Basic <token>"
//     unless the token is a plain word ("Basic auth" is prose, "Basic dXNlcjpwdw==" is not);
//   - JSON Web Tokens: "eyJ…" with two dots;
//   - values after a sensitive name followed by "=" or ":", as in query strings, form bodies,
//     cookies, header lines and JSON or Go maps printed into text
//     ("client_secret=abc&x=1", "Authorization: Basic …", `{"access_token":"abc"}`), a
//     whole {…} or […] when the value is one;
//   - the password of a URL ("https://user:pw@host/").
//
// It takes time linear in len(s) (looking back at most maxNameLen bytes from a separator)
// and allocates only when it finds something.
func credentialSpans(s string, keys *Keys, prose bool) []Span {
	var spans []Span
	for i := 0; i < len(s); i++ {
		if !startsCredential[s[i]] {
			continue
		}
		var sp Span
		found := false
		// The cheap checks on the next byte keep common letters from costing a call.
		switch c := s[i]; c {
		case 'b', 'B':
			if i+1 < len(s) && (s[i+1]|0x20 == 'e' || s[i+1]|0x20 == 'a') {
				sp, found = authSchemeSpan(s, i)
			}
		case 'e':
			if i+1 < len(s) && s[i+1] == 'y' {
				sp, found = jwtSpan(s, i)
			}
		case '=':
			sp, found = namedValueSpan(s, i, false, prose, keys)
		case ':':
			if strings.HasPrefix(s[i:], "://") {
				sp, found = urlPasswordSpan(s, i+3)
			} else {
				sp, found = namedValueSpan(s, i, true, prose, keys)
			}
		}
		if found {
			spans = append(spans, sp)
			i = sp.End - 1
		}
	}
	return spans
}

// startsCredential marks the bytes at which credentialSpans looks closer.
var startsCredential = [256]bool{'b': true, 'B': true, 'e': true, '=': true, ':': true}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isToken68 reports whether c may stand in an RFC 7235 token68 (before its "=" padding).
func isToken68(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// authSchemeSpan matches "Bearer <token>" or "Basic <token>" starting at i.
func authSchemeSpan(s string, i int) (Span, bool) {
	if i > 0 && isAlnum(s[i-1]) {
		return Span{}, false
	}
	var basic bool
	switch {
	case len(s)-i > 6 && strings.EqualFold(s[i:i+6], "bearer"):
		i += 6
	case len(s)-i > 5 && strings.EqualFold(s[i:i+5], "basic"):
		i += 5
		basic = true
	default:
		return Span{}, false
	}
	j := i
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	if j == i {
		return Span{}, false
	}
	start := j
	for j < len(s) && isToken68(s[j]) {
		j++
	}
	for j < len(s) && s[j] == '=' {
		j++
	}
	if j == start || basic && isWord(s[start:j]) {
		return Span{}, false
	}
	return Span{start, j}, true
}

// isWord reports whether t reads as a word rather than base64: letters only, lower case
// after the first.
func isWord(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || i == 0 && 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// jwtSpan matches a JSON Web Token (JWS or JWE, compact form) starting at i.
func jwtSpan(s string, i int) (Span, bool) {
	if !strings.HasPrefix(s[i:], "eyJ") || i > 0 && (isToken68(s[i-1])) {
		return Span{}, false
	}
	j, dots := i, 0
	for j < len(s) && (isAlnum(s[j]) || s[j] == '-' || s[j] == '_' || s[j] == '.') {
		if s[j] == '.' {
			dots++
		}
		j++
	}
	if dots < 2 {
		return Span{}, false
	}
	return Span{i, j}, true
}

// namedValueSpan matches the value after a sensitive name and the separator at i ("=", or
// ":" when colon). The name may be quoted ("name", 'name', \"name\"); so may the value, else
// it runs to a delimiter: for "=" the end of the word, for ":" the end of the line.
// In prose, an unquoted value after ":" that runs on past a space is text, not a value.
func namedValueSpan(s string, i int, colon, prose bool, keys *Keys) (Span, bool) {
	if !colon && (i+1 < len(s) && s[i+1] == '=' || i > 0 && s[i-1] == '=') {
		return Span{}, false // "==", or base64 padding
	}
	// The name: back over spaces (before ":" only), a closing quote, then name characters.
	j := i
	if colon {
		for j > 0 && s[j-1] == ' ' {
			j--
		}
	}
	if j > 0 && (s[j-1] == '"' || s[j-1] == '\'') {
		j--
		if j > 0 && s[j-1] == '\\' {
			j--
		}
	}
	end := j
	for j > 0 && end-j < maxNameLen && (isAlnum(s[j-1]) || s[j-1] == '_' || s[j-1] == '-' || s[j-1] == '.') {
		j--
	}
	if end-j < minNameLen || end-j >= maxNameLen || !keys.Sensitive(s[j:end]) {
		return Span{}, false
	}
	// The value.
	k := i + 1
	for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
		k++
	}
	if k == len(s) {
		return Span{}, false
	}
	switch q := s[k]; {
	case q == '"' || q == '\'':
		return quotedSpan(s, k+1, q, false)
	case q == '\\' && k+1 < len(s) && s[k+1] == '"':
		return quotedSpan(s, k+2, '"', true)
	case q == '{' || q == '[':
		// A whole object or list under a sensitive name is hidden, as in jsonHTML.
		return bracketSpan(s, k), true
	case q == '\\':
		return Span{}, false
	}
	start := k
	for k < len(s) && !endsValue(s[k], colon) {
		k++
	}
	if k == start {
		return Span{}, false
	}
	if colon && prose && strings.ContainsAny(strings.TrimRight(s[start:k], " \t"), " \t") {
		return Span{}, false
	}
	return Span{start, k}, true
}

// endsValue reports whether c ends an unquoted value after "=" (colon false) or ":". After
// ":" the value runs to the end of the line ("Cookie: a=1; b=2" hides both cookies) or of a
// JSON or Go value printed into text.
func endsValue(c byte, colon bool) bool {
	switch c {
	case '\n', '\r', ',', '"', '\'', '<', '>', '}', ']':
		return true
	case ' ', '\t', ')', '&', ';':
		return !colon
	}
	return false
}

// quotedSpan returns the inside of a quoted value that starts at i, up to the closing quote q
// (preceded by a backslash when escaped) or the end of s.
func quotedSpan(s string, i int, q byte, escaped bool) (Span, bool) {
	k := i
	for k < len(s) {
		c := s[k]
		if escaped && c == '\\' && k+1 < len(s) && s[k+1] == q {
			break
		}
		if !escaped && c == q {
			break
		}
		if c == '\\' {
			k++ // skip the escaped character
		}
		k++
	}
	k = min(k, len(s))
	if k == i {
		return Span{}, false
	}
	return Span{i, k}, true
}

// bracketSpan returns the object or list that starts at i, up to its closing bracket (or
// the end of s, for text that was cut), skipping brackets inside double-quoted strings.
func bracketSpan(s string, i int) Span {
	depth, inString := 0, false
	for k := i; k < len(s); k++ {
		switch c := s[k]; {
		case inString && c == '\\':
			k++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return Span{i, k + 1}
			}
		}
	}
	return Span{i, len(s)}
}

// urlPasswordSpan matches the password in the authority of a URL whose "://" ends at i.
func urlPasswordSpan(s string, i int) (Span, bool) {
	at, colon := -1, -1
authority:
	for k := i; k < len(s); k++ {
		switch s[k] {
		case '/', '?', '#', ' ', '\t', '\n', '\r', '"', '\'', '<', '>':
			break authority
		case '@':
			at = k
		case ':':
			if at < 0 && colon < 0 {
				colon = k
			}
		}
	}
	if at < 0 || colon < 0 || colon > at || colon+1 == at {
		return Span{}, false
	}
	return Span{colon + 1, at}, true
}
