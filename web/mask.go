package web

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file decides what the UI hides: values under sensitive keys, and credentials that
// stand inside text (an "Authorization: Bearer …" header in a log line, a form body with
// client_secret=…, a JWT, a password in a URL). The rules lean towards hiding: a page that
// hides a harmless value costs a click on "reveal"; one that shows a token leaks it.
//
// Two ways in, with the same rules:
//   - jsonHTML masks while it renders (nothing is copied);
//   - maskValue returns a masked deep copy, for anything else that shows values (a JSON
//     answer, a log line).
//
// A value that is null or the empty string is shown even under a sensitive key: it holds no
// secret, and "accessToken: null" is exactly what one looks for when a refresh went wrong.

// maskText stands in for a hidden value.
const maskText = "••••••••"

// sensitiveWords mark a key as sensitive when its normalised form (lower case, letters and
// digits only) contains one of them: "accessToken", "access_token", "X-API-Key",
// "client_secret", "Set-Cookie", "tokenUrl" all match.
var sensitiveWords = []string{
	"token", "secret", "passw", "passphrase", "pwd", "authorization", "apikey", "accesskey",
	"privatekey", "signingkey", "encryptionkey", "credential", "cookie", "signature", "session",
	"jwt", "bearer", "csrf", "xsrf",
}

// sensitiveKeys are sensitive only as the whole key: as parts of longer keys they are
// ordinary words ("author", "passenger", "shipping", "footprint", "business_name").
var sensitiveKeys = map[string]bool{
	"auth": true, "pass": true, "pin": true, "otp": true, "sig": true, "salt": true,
	"ssn": true, "cvv": true, "cvc": true,
}

// harmlessKeys contain a sensitive word but are known never to hold a secret: token_type is
// OAuth2's scheme name ("Bearer"), and language-model APIs count tokens in usage objects.
// "expires_in" needs no entry: it matches no word.
var harmlessKeys = map[string]bool{
	"tokentype": true, "prompttokens": true, "completiontokens": true, "totaltokens": true,
	"inputtokens": true, "outputtokens": true, "cachedtokens": true, "reasoningtokens": true,
	"maxtokens": true, "maxcompletiontokens": true, "maxoutputtokens": true,
}

// isSensitiveKey reports whether values under key k are secret. The key is normalised (lower
// case, letters and digits only, so "X-API-Key" reads "xapikey") and matched against
// sensitiveWords anywhere in it, sensitiveKeys as a whole, and harmlessKeys as exceptions.
// A bare "key" is not sensitive: static data, sort and lookup keys are too common to hide.
func isSensitiveKey(k string) bool {
	var buf [64]byte
	// n does not escape, so for short keys the conversion stays on the stack.
	n := string(normaliseKey(buf[:0], k))
	if n == "" || harmlessKeys[n] {
		return false
	}
	if sensitiveKeys[n] {
		return true
	}
	for i := 0; i < len(n); i++ {
		for _, w := range wordsByFirstByte[n[i]] {
			if strings.HasPrefix(n[i:], w) {
				return true
			}
		}
	}
	return false
}

// wordsByFirstByte indexes sensitiveWords by first byte, so that isSensitiveKey tries at
// each position of a key only the words that can start there.
var wordsByFirstByte = func() (idx [256][]string) {
	for _, w := range sensitiveWords {
		idx[w[0]] = append(idx[w[0]], w)
	}
	return idx
}()

// normaliseKey appends k's letters and digits, lower case, to dst.
func normaliseKey(dst []byte, k string) []byte {
	for i := 0; i < len(k); {
		c := k[i]
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				dst = append(dst, c)
			case 'A' <= c && c <= 'Z':
				dst = append(dst, c+'a'-'A')
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(k[i:])
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		i += size
	}
	return dst
}

// hidesValue reports whether a value must be hidden under a sensitive key: anything but null
// and the empty string.
func hidesValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	}
	return true
}

// namesSecret reports whether object m is a name/value pair naming a secret, the way header
// and query lists are written ([{"name": "Authorization", "value": "Bearer …"}]): then its
// "value" is hidden as if it stood under that name.
func namesSecret(m map[string]any) bool {
	if _, ok := m["value"]; !ok {
		return false
	}
	for _, k := range [...]string{"name", "key"} {
		if s, ok := m[k].(string); ok && isSensitiveKey(s) {
			return true
		}
	}
	return false
}

// hiddenEntry reports whether the entry k of object m is hidden; pair is namesSecret(m).
func hiddenEntry(k string, v any, pair bool) bool {
	return hidesValue(v) && (isSensitiveKey(k) || pair && k == "value")
}

// maxMaskDepth bounds maskValue's recursion. Values decoded by encoding/json nest at most
// 10,000 levels; anything deeper was built in Go, most likely with a cycle.
const maxMaskDepth = 20_000

// maskValue returns a deep copy of v in which every value under a sensitive key (at any
// depth, the whole subtree) is replaced by maskText, and credentials inside strings (see
// credentialSpans) by maskText too; v is not modified. Maps and slices of the types
// encoding/json decodes to (and []map[string]any) are copied as the same types; any other
// type is first converted through encoding/json. A value that cannot be converted, or that
// nests deeper than maxMaskDepth (a cycle), comes back as maskText as a whole.
//
// For a value shown apart from its key — a static-data change shown as key, before → after —
// use maskUnder(key, before) and maskUnder(key, after): a sensitive key hides both sides.
func maskValue(v any) any {
	m := masker{}
	out := m.value(v, 0)
	if m.failed {
		return maskText
	}
	return out
}

// maskUnder masks v as the value found under key k: maskText when k is sensitive (and v not
// null or ""), else maskValue(v).
func maskUnder(k string, v any) any {
	if isSensitiveKey(k) && hidesValue(v) {
		return maskText
	}
	return maskValue(v)
}

type masker struct{ failed bool }

func (m *masker) value(v any, depth int) any {
	if m.failed {
		return nil
	}
	if depth > maxMaskDepth {
		m.failed = true
		return nil
	}
	switch x := v.(type) {
	case nil, bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16,
		uint32, uint64, uintptr, json.Number:
		return x
	case string:
		return maskString(x)
	case map[string]any:
		return m.object(x, depth)
	case []any:
		if x == nil {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.value(e, depth+1)
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
	plain, ok := toJSONValue(v)
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
	pair := namesSecret(x)
	out := make(map[string]any, len(x))
	for k, e := range x {
		if hiddenEntry(k, e, pair) {
			e = maskText
		} else {
			e = m.value(e, depth+1)
		}
		if mk := maskString(k); mk != k {
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

// toJSONValue converts v of a type jsonHTML and maskValue do not know (a struct, []string,
// map[string]string, time.Time) to what encoding/json decodes its encoding to, numbers as
// json.Number. It reports false when v cannot be encoded.
func toJSONValue(v any) (any, bool) {
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

// maskString returns s with every credential span replaced by maskText.
func maskString(s string) string {
	spans := credentialSpans(s)
	if spans == nil {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pos := 0
	for _, sp := range spans {
		b.WriteString(s[pos:sp.start])
		b.WriteString(maskText)
		pos = sp.end
	}
	b.WriteString(s[pos:])
	return b.String()
}

// span is a byte range [start, end) of a string.
type span struct{ start, end int }

// A name before "=" or ":" is read only when it is minNameLen to maxNameLen bytes long: no
// shorter key is sensitive ("pin"), and maxNameLen bounds how far a scan looks back.
const (
	minNameLen = 3
	maxNameLen = 64
)

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
func credentialSpans(s string) []span {
	var spans []span
	for i := 0; i < len(s); i++ {
		if !startsCredential[s[i]] {
			continue
		}
		var sp span
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
			sp, found = namedValueSpan(s, i, false)
		case ':':
			if strings.HasPrefix(s[i:], "://") {
				sp, found = urlPasswordSpan(s, i+3)
			} else {
				sp, found = namedValueSpan(s, i, true)
			}
		}
		if found {
			spans = append(spans, sp)
			i = sp.end - 1
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
func authSchemeSpan(s string, i int) (span, bool) {
	if i > 0 && isAlnum(s[i-1]) {
		return span{}, false
	}
	var basic bool
	switch {
	case len(s)-i > 6 && strings.EqualFold(s[i:i+6], "bearer"):
		i += 6
	case len(s)-i > 5 && strings.EqualFold(s[i:i+5], "basic"):
		i += 5
		basic = true
	default:
		return span{}, false
	}
	j := i
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	if j == i {
		return span{}, false
	}
	start := j
	for j < len(s) && isToken68(s[j]) {
		j++
	}
	for j < len(s) && s[j] == '=' {
		j++
	}
	if j == start || basic && isWord(s[start:j]) {
		return span{}, false
	}
	return span{start, j}, true
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
func jwtSpan(s string, i int) (span, bool) {
	if !strings.HasPrefix(s[i:], "eyJ") || i > 0 && (isToken68(s[i-1])) {
		return span{}, false
	}
	j, dots := i, 0
	for j < len(s) && (isAlnum(s[j]) || s[j] == '-' || s[j] == '_' || s[j] == '.') {
		if s[j] == '.' {
			dots++
		}
		j++
	}
	if dots < 2 {
		return span{}, false
	}
	return span{i, j}, true
}

// namedValueSpan matches the value after a sensitive name and the separator at i ("=", or
// ":" when colon). The name may be quoted ("name", 'name', \"name\"); so may the value, else
// it runs to a delimiter: for "=" the end of the word, for ":" the end of the line.
func namedValueSpan(s string, i int, colon bool) (span, bool) {
	if !colon && (i+1 < len(s) && s[i+1] == '=' || i > 0 && s[i-1] == '=') {
		return span{}, false // "==", or base64 padding
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
	if end-j < minNameLen || end-j >= maxNameLen || !isSensitiveKey(s[j:end]) {
		return span{}, false
	}
	// The value.
	k := i + 1
	for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
		k++
	}
	if k == len(s) {
		return span{}, false
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
		return span{}, false
	}
	start := k
	for k < len(s) && !endsValue(s[k], colon) {
		k++
	}
	if k == start {
		return span{}, false
	}
	return span{start, k}, true
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
func quotedSpan(s string, i int, q byte, escaped bool) (span, bool) {
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
		return span{}, false
	}
	return span{i, k}, true
}

// bracketSpan returns the object or list that starts at i, up to its closing bracket (or
// the end of s, for text that was cut), skipping brackets inside double-quoted strings.
func bracketSpan(s string, i int) span {
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
				return span{i, k + 1}
			}
		}
	}
	return span{i, len(s)}
}

// urlPasswordSpan matches the password in the authority of a URL whose "://" ends at i.
func urlPasswordSpan(s string, i int) (span, bool) {
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
		return span{}, false
	}
	return span{colon + 1, at}, true
}
