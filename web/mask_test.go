package web

import (
	"reflect"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine/redact"
)

// The rules are tested in engine/redact; these tests check that the UI uses them, including
// the patterns flowd adds at start-up.

func TestMaskUsesTheSharedRules(t *testing.T) {
	in := map[string]any{"accessToken": "t1", "note": "sent Bearer zzz", "expiresAt": "2030"}
	want := map[string]any{"accessToken": maskText, "note": "sent Bearer " + maskText, "expiresAt": "2030"}
	if got := maskValue(in); !reflect.DeepEqual(got, want) {
		t.Errorf("maskValue = %#v, want %#v", got, want)
	}
	if got := maskUnder("refreshToken", "x"); got != maskText {
		t.Errorf("maskUnder = %#v", got)
	}
	s := "a=1&client_secret=s3cr3t&b=2"
	spans := credentialSpans(s)
	if len(spans) != 1 || s[spans[0].start:spans[0].end] != "s3cr3t" {
		t.Errorf("credentialSpans(%q) = %v", s, spans)
	}
	if credentialSpans("nothing here") != nil {
		t.Error("credentialSpans found something in plain text")
	}
}

func TestMaskFollowsAddedKeyPatterns(t *testing.T) {
	keys, err := redact.NewKeys("iban")
	if err != nil {
		t.Fatal(err)
	}
	if isSensitiveKey("IBAN") {
		t.Fatal("IBAN is sensitive before the pattern is added")
	}
	redact.SetKeys(keys)
	t.Cleanup(func() { redact.SetKeys(nil) })

	if !isSensitiveKey("payee_IBAN") {
		t.Error("payee_IBAN is not sensitive with the pattern iban")
	}
	if got := maskValue(map[string]any{"iban": "DE89370400440532013000"}); !reflect.DeepEqual(got, map[string]any{"iban": maskText}) {
		t.Errorf("maskValue = %#v", got)
	}
	html := string(jsonHTML(map[string]any{"iban": "DE89370400440532013000", "text": "iban=DE89370400440532013000"}, jsonViewOptions{}))
	if strings.Contains(html, "DE89") {
		t.Errorf("the IBAN shows in the UI:\n%s", html)
	}
}
