package redact

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestIsSensitiveKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"accessToken", true},
		{"access_token", true},
		{"refresh_token", true},
		{"X-API-Key", true},
		{"api_key", true},
		{"client_secret", true},
		{"Authorization", true},
		{"proxy-authorization", true},
		{"password", true},
		{"Passwort", true},
		{"passwd", true},
		{"user_pwd", true},
		{"passphrase", true},
		{"tokenUrl", true}, // over-masking is the safe side
		{"Set-Cookie", true},
		{"cookies", true},
		{"sessionId", true},
		{"private_key", true},
		{"aws_secret_access_key", true},
		{"AccessKey", true},
		{"credentials", true},
		{"x-hub-signature-256", true},
		{"csrf_token", true},
		{"JWT", true},
		{"auth", true},
		{"pass", true},
		{"PIN", true},
		{"otp", true},

		{"expires_in", false},
		{"expiresAt", false},
		{"token_type", false},
		{"tokenType", false},
		{"prompt_tokens", false},
		{"total_tokens", false},
		{"author", false},
		{"authored_by", false},
		{"passenger", false},
		{"shipping", false},
		{"footprint", false},
		{"business_name", false},
		{"key", false},
		{"name", false},
		{"value", false},
		{"", false},
		{"---", false},
		{"ÜberSecretÖ", true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := IsSensitiveKey(tt.key); got != tt.want {
				t.Errorf("IsSensitiveKey(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	const m = Mask
	tests := []struct {
		name, in, want string
	}{
		{"bearer", "Bearer abc.def-1", "Bearer " + m},
		{"bearer lower case", "bearer abc", "bearer " + m},
		{"bearer in a sentence", "sent Bearer abc= to the API", "sent Bearer " + m + " to the API"},
		{"bearer alone", "Bearer", "Bearer"},
		{"basic credentials", "Basic dXNlcjpwYXNz", "Basic " + m},
		{"basic as a word", "Basic auth is used", "Basic auth is used"},
		{"basically", "basically fine", "basically fine"},
		{"header line", "Authorization: Bearer abc\nAccept: */*", "Authorization: " + m + "\nAccept: */*"},
		{"cookie header", "Cookie: a=1; sid=2", "Cookie: " + m},
		{"form body", "grant_type=client_credentials&client_secret=s3cr3t&scope=a",
			"grant_type=client_credentials&client_secret=" + m + "&scope=a"},
		{"query string", "https://api.example.com/x?access_token=abc123&page=2",
			"https://api.example.com/x?access_token=" + m + "&page=2"},
		{"cookie pairs", "session=abc; theme=dark", "session=" + m + "; theme=dark"},
		{"json in text", `{"access_token":"abc","expires_in":3600}`, `{"access_token":"` + m + `","expires_in":3600}`},
		{"json in text, spaced", `{"password" : "x y", "user": "u"}`, `{"password" : "` + m + `", "user": "u"}`},
		{"json escaped in text", `{\"apiKey\":\"k1\"}`, `{\"apiKey\":\"` + m + `\"}`},
		{"json number", `{"pin": 1234, "n": 1}`, `{"pin": ` + m + `, "n": 1}`},
		{"nested object in text", `{"credentials": {"user": "u", "password": "p"}, "n": 1}`,
			`{"credentials": ` + m + `, "n": 1}`},
		{"nested list in text", `{"refresh_tokens": ["a]", "b"], "n": [1]}`, `{"refresh_tokens": ` + m + `, "n": [1]}`},
		{"list in text cut short", `{"tokens": ["a", "b`, `{"tokens": ` + m},
		{"object under a plain name", `{"user": {"name": "u", "pin": "1"}}`, `{"user": {"name": "u", "pin": "` + m + `"}}`},
		{"go map", "map[password:hunter2 user:bob]", "map[password:" + m + "]"},
		{"url password", "postgres://bob:pw@db:5432/x", "postgres://bob:" + m + "@db:5432/x"},
		{"url without password", "https://host:8080/a?b=c", "https://host:8080/a?b=c"},
		{"url user only", "https://bob@host/", "https://bob@host/"},
		{"jwt", "id eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x end", "id " + m + " end"},
		{"jwt unsigned", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", m},
		{"eyJ without dots", "eyJonly", "eyJonly"},
		{"harmless name", "token_type=Bearer", "token_type=Bearer"},
		{"time", "10:30 meeting", "10:30 meeting"},
		{"operator", "token==x", "token==x"},
		{"empty value", "password=", "password="},
		{"empty", "", ""},
		{"plain", "hello world", "hello world"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// deepCopyJSON returns an independent copy of a JSON value, to compare against later.
func deepCopyJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValue(t *testing.T) {
	const m = Mask
	in := map[string]any{
		"user": map[string]any{
			"name": "ada",
			"credentials": map[string]any{
				"password": "p1",
				"list":     []any{"x", []any{"y"}},
			},
		},
		"items": []any{
			map[string]any{"accessToken": "t1", "expiresAt": "2030-01-01T00:00:00Z"},
			[]any{map[string]any{"apiKey": []any{"k1", "k2"}}},
		},
		"headers": []any{
			map[string]any{"name": "X-API-Key", "value": "k3"},
			map[string]any{"name": "Accept", "value": "*/*"},
		},
		"note":         "sent Bearer zzz",
		"access_token": "",  // nothing to hide
		"refreshToken": nil, // nothing to hide
		"secretCount":  float64(3),
		"n":            json.Number("1.50"),
		"ok":           true,
	}
	orig := deepCopyJSON(t, in)

	got := Value(in)

	want := map[string]any{
		"user": map[string]any{
			"name":        "ada",
			"credentials": m,
		},
		"items": []any{
			map[string]any{"accessToken": m, "expiresAt": "2030-01-01T00:00:00Z"},
			[]any{map[string]any{"apiKey": m}},
		},
		"headers": []any{
			map[string]any{"name": "X-API-Key", "value": m},
			map[string]any{"name": "Accept", "value": "*/*"},
		},
		"note":         "sent Bearer " + m,
		"access_token": "",
		"refreshToken": nil,
		"secretCount":  m,
		"n":            json.Number("1.50"),
		"ok":           true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Value:\n got %#v\nwant %#v", got, want)
	}
	if now := deepCopyJSON(t, in); !reflect.DeepEqual(now, orig) {
		t.Errorf("Value changed its input:\n now %#v\nwas %#v", now, orig)
	}

	// The copy is deep: changing it leaves the input alone.
	got.(map[string]any)["user"].(map[string]any)["name"] = "changed"
	got.(map[string]any)["items"].([]any)[0].(map[string]any)["expiresAt"] = "changed"
	if now := deepCopyJSON(t, in); !reflect.DeepEqual(now, orig) {
		t.Errorf("changing Value's result changed its input")
	}
}

// Two JSON Web Tokens, for keys and values that are credentials by their shape.
const (
	jwtA = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.c2lnYQ"
	jwtB = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJiIn0.c2lnYg"
)

func TestValueTypes(t *testing.T) {
	const m = Mask
	type login struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"items keep their type", []map[string]any{{"token": "t"}, {"a": int64(1)}},
			[]map[string]any{{"token": m}, {"a": int64(1)}}},
		{"struct through encoding/json", login{User: "u", Password: "p"},
			map[string]any{"user": "u", "password": m}},
		{"map of strings", map[string]string{"Authorization": "Basic dTpw", "Accept": "x"},
			map[string]any{"Authorization": m, "Accept": "x"}},
		{"bearer string", "Bearer abc", "Bearer " + m},
		{"bearer strings in arrays", []any{[]any{"Bearer a"}, "bearer b"}, []any{[]any{"Bearer " + m}, "bearer " + m}},
		{"keys that are credentials", map[string]any{jwtA: 1.0, jwtB: 2.0},
			map[string]any{m: 1.0, m + " #2": 2.0}},
		{"unencodable", map[string]any{"c": make(chan int)}, m},
		{"nil", nil, nil},
		{"nil map", map[string]any(nil), map[string]any(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Value(tt.in)
			if tt.name == "keys that are credentials" {
				// Which key gets "#2" depends on map order; compare the values as a set.
				g := got.(map[string]any)
				if len(g) != 2 || !(g[m] == 1.0 && g[m+" #2"] == 2.0 || g[m] == 2.0 && g[m+" #2"] == 1.0) {
					t.Errorf("got %#v", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Value(%#v)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValueDeepAndCyclic(t *testing.T) {
	t.Run("10,000 levels", func(t *testing.T) {
		// As deep as encoding/json decodes: 10,000 objects and arrays, one in the other.
		const depth = 10_000 / 2
		var v any = map[string]any{"password": "deep-secret", "ok": "leaf"}
		for range depth - 1 {
			v = []any{map[string]any{"a": v}}
		}
		got := Value(v)
		for range depth - 1 {
			got = got.([]any)[0].(map[string]any)["a"]
		}
		want := map[string]any{"password": Mask, "ok": "leaf"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("innermost value = %#v, want %#v", got, want)
		}
	})
	t.Run("cycle", func(t *testing.T) {
		m := map[string]any{"token": "s"}
		m["self"] = m
		m["again"] = m // two ways round: a walk without a bound would take 2^depth steps
		if got := Value(m); got != Mask {
			t.Errorf("Value(cycle) = %#v, want Mask", got)
		}
	})
}

func TestUnder(t *testing.T) {
	tests := []struct {
		key  string
		in   any
		want any
	}{
		{"accessToken", "abc", Mask},
		{"accessToken", map[string]any{"x": 1.0}, Mask},
		{"accessToken", nil, nil},
		{"accessToken", "", ""},
		{"expiresAt", "2030", "2030"},
		{"state", map[string]any{"password": "p"}, map[string]any{"password": Mask}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := Under(tt.key, tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Under(%q, %#v) = %#v, want %#v", tt.key, tt.in, got, tt.want)
			}
		})
	}
}

func TestNamesSecret(t *testing.T) {
	tests := []struct {
		in   map[string]any
		want bool
	}{
		{map[string]any{"name": "Authorization", "value": "x"}, true},
		{map[string]any{"key": "api_key", "value": "x"}, true},
		{map[string]any{"name": "Accept", "value": "x"}, false},
		{map[string]any{"name": "Authorization"}, false},
		{map[string]any{"name": 3, "value": "x"}, false},
	}
	for _, tt := range tests {
		name, _ := json.Marshal(tt.in)
		t.Run(strings.ReplaceAll(string(name), "/", "_"), func(t *testing.T) {
			if got := NamesSecret(tt.in); got != tt.want {
				t.Errorf("NamesSecret(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// BenchmarkCredentialSpans scans 1 MiB of text built to make a careless scanner go back
// and forth (separators, scheme words, URL starts, unclosed quotes); b.SetBytes turns the
// result into MB/s, which should stay near that of plain text.
func BenchmarkCredentialSpans(b *testing.B) {
	for _, tc := range []struct{ name, unit string }{
		{"plain", "The quick brown fox jumps over the lazy dog. "},
		{"separators", "a:b=c::d==e:/f "},
		{"urls", "x://y:z" + "://"},
		{"schemes", "basic basic Bearer "},
		{"names", "tokentokentokentokentokentokentokentokentokentokentokentoken:"},
	} {
		s := strings.Repeat(tc.unit, (1<<20)/len(tc.unit))
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				CredentialSpans(s)
			}
		})
	}
}

// ObjectShared masks what Object masks, changes nothing it is given, and hands back the
// parts with nothing to mask as they are.
func TestObjectShared(t *testing.T) {
	r := &Redactor{keys: CurrentKeys()}
	t.Run("masks as Object does", func(t *testing.T) {
		in := map[string]any{
			"user":    map[string]any{"name": "ada", "credentials": map[string]any{"password": "p1"}},
			"items":   []any{map[string]any{"accessToken": "t1", "at": "2030"}, []any{map[string]any{"apiKey": []any{"k1"}}}},
			"headers": []any{map[string]any{"name": "X-API-Key", "value": "k3"}, map[string]any{"name": "Accept", "value": "*/*"}},
			"note":    "sent Bearer zzz",
			jwtA:      "a key that is a credential",
			"ok":      true,
		}
		orig := deepCopyJSON(t, in)
		if got, want := r.ObjectShared(in), r.Object(in); !reflect.DeepEqual(got, want) {
			t.Errorf("ObjectShared:\n got %#v\nwant %#v", got, want)
		}
		if now := deepCopyJSON(t, in); !reflect.DeepEqual(now, orig) {
			t.Errorf("ObjectShared changed its input:\n now %#v\nwas %#v", now, orig)
		}
	})
	t.Run("shares what has nothing to mask", func(t *testing.T) {
		clean := map[string]any{"body": map[string]any{"list": []any{"x", int64(2)}}, "n": int64(1), "none": nil}
		if got := r.ObjectShared(clean); reflect.ValueOf(got).UnsafePointer() != reflect.ValueOf(clean).UnsafePointer() {
			t.Errorf("an item with nothing to mask was copied: %#v", got)
		}
		in := map[string]any{"keep": clean, "login": map[string]any{"password": "p"}}
		got := r.ObjectShared(in)
		if reflect.ValueOf(got).UnsafePointer() == reflect.ValueOf(in).UnsafePointer() {
			t.Fatal("an item with a secret was returned as it is")
		}
		if reflect.ValueOf(got["keep"]).UnsafePointer() != reflect.ValueOf(clean).UnsafePointer() {
			t.Error("the part with nothing to mask was copied")
		}
		if got["login"].(map[string]any)["password"] != Mask || in["login"].(map[string]any)["password"] != "p" {
			t.Errorf("secret: got %v, input now %v", got["login"], in["login"])
		}
	})
	t.Run("a secret 5,000 levels down", func(t *testing.T) {
		// Each level masks its changed child once: a walk that masked it again for the copy
		// would take 2^5000 steps.
		const depth = 5_000
		var v any = map[string]any{"password": "deep-secret", "ok": "leaf"}
		for range depth - 1 {
			v = []any{map[string]any{"a": v, "sibling": map[string]any{"x": "y"}}}
		}
		got := any(r.ObjectShared(map[string]any{"root": v}))
		got = got.(map[string]any)["root"]
		for range depth - 1 {
			got = got.([]any)[0].(map[string]any)["a"]
		}
		if want := map[string]any{"password": Mask, "ok": "leaf"}; !reflect.DeepEqual(got, want) {
			t.Errorf("innermost value = %#v, want %#v", got, want)
		}
	})
}
