package redact

import (
	"reflect"
	"strings"
	"testing"
)

func TestNewKeys(t *testing.T) {
	k, err := NewKeys("IBAN", " account-number ")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want bool
	}{
		{"iban", true},
		{"payeeIBAN", true},
		{"Account_Number", true},
		{"accessToken", true}, // the built-in rules stay
		{"token_type", false}, // and so do their exceptions
		{"account", false},
		{"name", false},
	}
	for _, tt := range tests {
		if got := k.Sensitive(tt.key); got != tt.want {
			t.Errorf("Sensitive(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
	if got := k.Patterns(); !reflect.DeepEqual(got, []string{"iban", "accountnumber"}) {
		t.Errorf("Patterns() = %q", got)
	}
	for _, bad := range []string{"id", "--", "a_b"} {
		if _, err := NewKeys(bad); err == nil || !strings.Contains(err.Error(), "at least 3 letters or digits") {
			t.Errorf("NewKeys(%q): %v, want an error", bad, err)
		}
	}
}

func TestParsePatterns(t *testing.T) {
	if got := ParsePatterns(" iban, ,account_number,"); !reflect.DeepEqual(got, []string{"iban", "account_number"}) {
		t.Errorf("ParsePatterns = %q", got)
	}
	if got := ParsePatterns(""); got != nil {
		t.Errorf("ParsePatterns(\"\") = %q", got)
	}
}

func TestSetKeys(t *testing.T) {
	k, err := NewKeys("iban")
	if err != nil {
		t.Fatal(err)
	}
	SetKeys(k)
	t.Cleanup(func() { SetKeys(nil) })
	if !IsSensitiveKey("iban") || String("iban=DE89") != "iban="+Mask {
		t.Error("the process's rules do not have the added pattern")
	}
	SetKeys(nil)
	if IsSensitiveKey("iban") {
		t.Error("SetKeys(nil) did not restore the built-in rules")
	}
}

func TestRedactorSecretValues(t *testing.T) {
	const (
		clientSecret = "s3cr3t-Value-42"
		apiKey       = "k3y-9f8e7d"
		short        = "abc"
	)
	r := New(nil, map[string]string{"CLIENT_SECRET": clientSecret, "API_KEY": apiKey, "PIN": short})
	if got := r.Short(); !reflect.DeepEqual(got, []string{"PIN"}) {
		t.Errorf("Short() = %q", got)
	}
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"whole string", clientSecret, "[$secrets.CLIENT_SECRET]"},
		{"substring", "https://api.example.com/v1?x=" + apiKey + "&y=" + apiKey,
			"https://api.example.com/v1?x=[$secrets.API_KEY]&y=[$secrets.API_KEY]"},
		{"in an error message", `token endpoint said: unknown client "` + clientSecret + `"`,
			`token endpoint said: unknown client "[$secrets.CLIENT_SECRET]"`},
		{"deep in lists and objects", map[string]any{"a": []any{map[string]any{"b": []any{"x" + apiKey + "y"}}}},
			map[string]any{"a": []any{map[string]any{"b": []any{"x[$secrets.API_KEY]y"}}}}},
		{"as a key", map[string]any{apiKey: 1.0}, map[string]any{"[$secrets.API_KEY]": 1.0}},
		{"under a sensitive key", map[string]any{"password": clientSecret, "user": "u"},
			map[string]any{"password": Mask, "user": "u"}},
		{"too short to redact by value", "abc abcd", "abc abcd"},
		{"numbers and booleans untouched", []any{int64(42), 1.5, true, nil}, []any{int64(42), 1.5, true, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Value(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Value(%#v)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactorOverlappingSecrets(t *testing.T) {
	r := New(nil, map[string]string{"OUTER": "abcdef-123456", "INNER": "123456", "SAME": "abcdef-123456"})
	// The longer secret is replaced whole, not by the shorter one inside it; of two names with
	// one value, the first in name order stands for both.
	got := r.String("x abcdef-123456 y 123456")
	if want := "x [$secrets.OUTER] y [$secrets.INNER]"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestRedactorLeavesItsInputAlone(t *testing.T) {
	r := New(nil, map[string]string{"S": "secret-value"})
	in := map[string]any{"a": "secret-value", "token": "t", "l": []any{"secret-value"}}
	out := r.Object(in)
	if in["a"] != "secret-value" || in["token"] != "t" || in["l"].([]any)[0] != "secret-value" {
		t.Errorf("the input changed: %#v", in)
	}
	if out["a"] != "[$secrets.S]" || out["token"] != Mask || out["l"].([]any)[0] != "[$secrets.S]" {
		t.Errorf("Object = %#v", out)
	}
	if r.Object(nil) != nil {
		t.Error("Object(nil) is not nil")
	}
}

func TestRedactorUnder(t *testing.T) {
	r := New(nil, map[string]string{"S": "secret-value"})
	tests := []struct {
		key  string
		in   any
		want any
	}{
		{"accessToken", map[string]any{"x": 1.0}, Mask},
		{"accessToken", nil, nil},
		{"state", map[string]any{"v": "secret-value"}, map[string]any{"v": "[$secrets.S]"}},
	}
	for _, tt := range tests {
		if got := r.Under(tt.key, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Under(%q, %#v) = %#v, want %#v", tt.key, tt.in, got, tt.want)
		}
	}
}

func TestNilRedactor(t *testing.T) {
	var r *Redactor
	if got := r.String("Bearer abc secret-value"); got != "Bearer "+Mask+" secret-value" {
		t.Errorf("String = %q", got)
	}
	if got := r.Value(map[string]any{"token": "t"}); !reflect.DeepEqual(got, map[string]any{"token": Mask}) {
		t.Errorf("Value = %#v", got)
	}
	if r.Short() != nil || r.Keys() == nil {
		t.Error("a nil Redactor has short secrets or no keys")
	}
}

// BenchmarkRedactorItem redacts a typical item (a token response and request metadata)
// with ten configured secrets, none of which it holds: the cost every stored item pays.
func BenchmarkRedactorItem(b *testing.B) {
	secrets := map[string]string{}
	for i := range 10 {
		secrets["S"+string(rune('A'+i))] = strings.Repeat(string(rune('a'+i)), 8) + "-value"
	}
	r := New(nil, secrets)
	item := map[string]any{
		"access_token": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.c2lnYQ",
		"token_type":   "Bearer",
		"expires_in":   int64(3600),
		"scope":        "read write",
		"request":      map[string]any{"url": "https://auth.example.com/oauth/token", "method": "POST", "attempt": int64(1)},
		"note":         "refreshed because the old token expires at 2030-01-01T00:00:00Z",
	}
	for b.Loop() {
		r.Object(item)
	}
}
