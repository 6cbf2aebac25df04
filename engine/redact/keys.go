package redact

import (
	"fmt"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

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

// MinPatternLen is the shortest key pattern NewKeys accepts, in letters and digits: a
// shorter one ("id") would hide most of every record.
const MinPatternLen = 3

// Keys decides which object keys, header names and form fields hold secrets. Its rules never
// change once made, and it is safe for concurrent use.
type Keys struct {
	// byFirst indexes the words a key may contain by their first byte, so that Sensitive
	// tries at each position of a key only the words that can start there.
	byFirst [256][]string
	extra   []string
	// known remembers Sensitive's answers: run records, logs and pages ask about the same
	// keys over and over.
	known *remembered[bool]
}

// defaultKeys are the built-in rules.
var defaultKeys = mustKeys()

func mustKeys() *Keys {
	k, err := NewKeys()
	if err != nil {
		panic(err)
	}
	return k
}

// NewKeys returns the built-in rules plus patterns: a key is also sensitive when its
// normalised form (lower case, letters and digits only, so "Account-Number" reads
// "accountnumber") contains a pattern's normalised form. A pattern with fewer than
// MinPatternLen letters and digits is an error. The built-in exceptions (token_type, the
// token counts of language-model APIs) stay harmless whatever the patterns say.
func NewKeys(patterns ...string) (*Keys, error) {
	k := &Keys{known: newRemembered[bool]()}
	for _, w := range sensitiveWords {
		k.byFirst[w[0]] = append(k.byFirst[w[0]], w)
	}
	for _, p := range patterns {
		n := string(normaliseKey(nil, p))
		if len(n) < MinPatternLen {
			return nil, fmt.Errorf("redact key pattern %q: want at least %d letters or digits", p, MinPatternLen)
		}
		k.byFirst[n[0]] = append(k.byFirst[n[0]], n)
		k.extra = append(k.extra, n)
	}
	return k, nil
}

// ParsePatterns splits a comma-separated list of key patterns (as --redact-keys and
// FLOWD_REDACT_KEYS give them), dropping spaces and empty entries.
func ParsePatterns(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Patterns returns the patterns added to the built-in rules, normalised.
func (k *Keys) Patterns() []string { return append([]string(nil), k.extra...) }

// Sensitive reports whether values under key are secret. The key is normalised (lower case,
// letters and digits only, so "X-API-Key" reads "xapikey") and matched against the sensitive
// words anywhere in it, the short sensitive keys ("pin", "otp", "auth") as a whole, and the
// harmless keys as exceptions. A bare "key" is not sensitive: static data, sort and lookup
// keys are too common to hide. A nil Keys is the built-in rules.
func (k *Keys) Sensitive(key string) bool {
	if k == nil {
		k = defaultKeys
	}
	return k.known.get(key, k.sensitive)
}

// sensitive is Sensitive, worked out.
func (k *Keys) sensitive(key string) bool {
	var buf [64]byte
	// n does not escape, so for short keys the conversion stays on the stack.
	n := string(normaliseKey(buf[:0], key))
	if n == "" || harmlessKeys[n] {
		return false
	}
	if sensitiveKeys[n] {
		return true
	}
	for i := 0; i < len(n); i++ {
		for _, w := range k.byFirst[n[i]] {
			if strings.HasPrefix(n[i:], w) {
				return true
			}
		}
	}
	return false
}

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

// processKeys are the rules of the package-level functions (IsSensitiveKey, Value, String…),
// which every part of the process that shows values without a Redactor of its own — the UI —
// uses; SetKeys changes them once at start-up.
var processKeys atomic.Pointer[Keys]

// SetKeys makes k the rules of the package-level functions, for the whole process; nil
// restores the built-in rules. flowd calls it once at start-up with the --redact-keys
// patterns, so that the UI hides what the run records and logs hide.
func SetKeys(k *Keys) { processKeys.Store(k) }

// CurrentKeys returns the rules SetKeys set, or the built-in ones.
func CurrentKeys() *Keys {
	if k := processKeys.Load(); k != nil {
		return k
	}
	return defaultKeys
}

// IsSensitiveKey reports whether values under key are secret by the process's rules (see
// Keys.Sensitive and SetKeys).
func IsSensitiveKey(key string) bool { return CurrentKeys().Sensitive(key) }
