package web

// Fuzz target for the webhook's request-to-item step. `make fuzz` runs it for a few seconds;
// testdata/fuzz/FuzzWebhookBody/ holds the committed seeds and every regression found.

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
)

// fuzzMaxBody is the body limit under fuzzing: small, so the fuzzer reaches it.
const fuzzMaxBody = 256

// FuzzWebhookBody turns arbitrary bodies with arbitrary Content-Types into webhook items, with
// and without a declared length. Properties: a body over the limit is refused with 413 and one
// within it never is; a failure has a 4xx status and a message that says what was wrong,
// without bare Go-internal text such as "unexpected EOF"; a JSON body's value survives being
// encoded and decoded again, holding only JSON types; a form is an object of UTF-8 strings or
// lists of them; text comes back as it was sent.
func FuzzWebhookBody(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"a": 1, "b": [true, null, 2.5, "x"], "c": {"d": 12345678901234567890}}`},
		{"application/json; charset=utf-8", `{"a": tru}`},
		{"application/vnd.api+json", `"text" "more"`},
		{"application/json", `{"a": 1e400, "b": -0, "c": 1.0}`},
		{"application/json", ""},
		{"application/x-www-form-urlencoded", "a=1&a=2&b=%zz&c"},
		{"multipart/form-data; boundary=x", "--x--"},
		{"text/plain", "hello\xff"},
		{"", "just text"},
		{"text/plain; charset=", "x"},
		{"application/json", strings.Repeat("[", 300)},
	} {
		f.Add(s.ct, []byte(s.body), true)
	}
	h := &webhooks{maxBody: fuzzMaxBody, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, contentType string, body []byte, declareLength bool) {
		r := httptest.NewRequest(http.MethodPost, "/webhook/x", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if !declareLength {
			r.ContentLength = -1 // as a chunked request has
		}
		// As the handler does: read the raw body (bounded), then decode it.
		raw, status, err := h.readBody(httptest.NewRecorder(), r)
		var v any
		if err == nil {
			v, status, err = decodeBody(r, raw)
		}
		if len(body) > fuzzMaxBody {
			if status != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d-byte body over the %d-byte limit: status %d, %v", len(body), fuzzMaxBody, status, err)
			}
			return
		}
		if err != nil {
			checkBodyError(t, status, err)
			return
		}
		if status != 0 {
			t.Fatalf("status %d without an error", status)
		}
		checkBodyValue(t, contentType, body, v)
	})
}

// checkBodyError asserts a refused body gets a client-error status and a message that names
// what was wrong.
func checkBodyError(t *testing.T, status int, err error) {
	t.Helper()
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
	default:
		t.Fatalf("status %d for %v", status, err)
	}
	msg := err.Error()
	if !utf8.ValidString(msg) || strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("message not one line of text: %q", msg)
	}
	for _, internal := range []string{"EOF", "unexpected EOF"} {
		if strings.HasSuffix(msg, ": "+internal) || msg == internal {
			t.Fatalf("message ends in Go's %q: %q", internal, msg)
		}
	}
}

// checkBodyValue asserts what an accepted body became.
func checkBodyValue(t *testing.T, contentType string, body []byte, v any) {
	t.Helper()
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		if len(bytes.TrimSpace(body)) == 0 {
			if m, ok := v.(map[string]any); !ok || len(m) != 0 {
				t.Fatalf("empty JSON body became %#v", v)
			}
			return
		}
		checkJSONValue(t, v)
		data, err := encodeJSON(v)
		if err != nil {
			t.Fatalf("body value %#v does not encode: %v", v, err)
		}
		again, err := engine.DecodeJSON(data)
		if err != nil || !reflect.DeepEqual(v, again) {
			t.Fatalf("JSON body does not round-trip:\n%#v\n%s\n%#v (%v)", v, data, again, err)
		}
	case mediaType == "application/x-www-form-urlencoded":
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("form became %#v", v)
		}
		for k, e := range m {
			if !utf8.ValidString(k) || !isFormValue(e) {
				t.Fatalf("form field %q is %#v", k, e)
			}
		}
	case len(body) == 0:
		if m, ok := v.(map[string]any); !ok || len(m) != 0 {
			t.Fatalf("empty body became %#v", v)
		}
	default:
		if s, ok := v.(string); !ok || s != string(body) || !utf8.ValidString(s) {
			t.Fatalf("text body %q became %#v", body, v)
		}
	}
}

// isFormValue reports whether v is a form field's value: UTF-8 text, or a list of two or
// more (so that the item, stored as JSON, is what the flow ran with).
func isFormValue(v any) bool {
	switch x := v.(type) {
	case string:
		return utf8.ValidString(x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); !ok || !utf8.ValidString(s) {
				return false
			}
		}
		return len(x) > 1
	}
	return false
}

// checkJSONValue asserts v holds only the types decodeJSON promises.
func checkJSONValue(t *testing.T, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil, bool, string, int64, float64, json.Number:
	case []any:
		for _, e := range x {
			checkJSONValue(t, e)
		}
	case map[string]any:
		for _, e := range x {
			checkJSONValue(t, e)
		}
	default:
		t.Fatalf("body holds a %T: %#v", v, v)
	}
}
