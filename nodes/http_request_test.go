package nodes_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// seen is one request as the test server received it.
type seen struct {
	Method   string
	Path     string
	RawQuery string
	Host     string
	Header   http.Header
	Body     string
	At       time.Time
}

// recorder keeps what a test server received, for assertions in the test goroutine.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (rec *recorder) add(r *http.Request) int {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, seen{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host,
		Header: r.Header.Clone(), Body: string(body), At: time.Now(),
	})
	return len(rec.reqs)
}

func (rec *recorder) all() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seen(nil), rec.reqs...)
}

// newServer starts a test server on 127.0.0.1 that records each request and then calls h
// with the request's 1-based hit number. Params may say SERVER for the server's URL.
func newServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, hit int)) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, rec.add(r))
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, rec
}

// reply writes a response with a content type and body.
func reply(w http.ResponseWriter, status int, contentType, body string) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func loadHTTP(t *testing.T, params string, srv *httptest.Server) *engine.FlowNode {
	t.Helper()
	if srv != nil {
		params = strings.ReplaceAll(params, "SERVER", srv.URL)
	}
	n, err := (&engine.Loader{Registry: nodes.NewRegistry()}).LoadNode("httpRequest", params)
	if err != nil {
		t.Fatalf("load %s:\n%v", params, err)
	}
	return n
}

func execHTTP(t *testing.T, n *engine.FlowNode, items []engine.Item, opts ...engine.ExecOption) *engine.NodeResult {
	t.Helper()
	if items == nil {
		items = []engine.Item{{}}
	}
	res, err := engine.ExecNode(context.Background(), n, items, nil, opts...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// wantItems fails the test unless res succeeded for every item with exactly want on port 0.
func wantItems(t *testing.T, res *engine.NodeResult, want []engine.Item) {
	t.Helper()
	for _, f := range res.Failed {
		t.Errorf("item %d failed: %v", f.Index, f.Err)
	}
	if got := res.Ports[0]; !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("items:\n got  %#v\n want %#v", got, want)
	}
}

// wantFailure fails the test unless res failed exactly one item, whose error holds every
// one of parts, and returns the message.
func wantFailure(t *testing.T, res *engine.NodeResult, parts ...string) string {
	t.Helper()
	if len(res.Failed) != 1 {
		t.Fatalf("want 1 failed item, got %d (items %v)", len(res.Failed), res.Ports[0])
	}
	msg := res.Failed[0].Err.Error()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not contain %q", msg, p)
		}
	}
	return msg
}

func TestHTTPResponseFormats(t *testing.T) {
	tests := []struct {
		name        string
		response    string // the response parameter, or ""
		contentType string
		body        string
		want        []engine.Item
	}{
		{
			name:        "json object",
			contentType: "application/json; charset=utf-8",
			body:        `{"a": 1, "b": 1.5, "c": "x", "d": [1, 2.25, null], "e": {"f": true}, "g": 1e3, "big": 12345678901234567890}`,
			want: []engine.Item{{
				"a": int64(1), "b": 1.5, "c": "x", "d": []any{int64(1), 2.25, nil},
				"e": map[string]any{"f": true}, "g": int64(1000), "big": 12345678901234567890.0,
			}},
		},
		{
			name:        "json array is one item per element",
			contentType: "application/json",
			body:        `[{"id": 1}, {"id": 2}, 3, "four"]`,
			want:        []engine.Item{{"id": int64(1)}, {"id": int64(2)}, {"value": int64(3)}, {"value": "four"}},
		},
		{name: "empty json array gives no items", contentType: "application/json", body: `[]`, want: nil},
		{name: "empty json body is an empty object", contentType: "application/json", body: "", want: []engine.Item{{}}},
		{name: "json null is an empty object", contentType: "application/json", body: "null", want: []engine.Item{{}}},
		{name: "json scalar", contentType: "application/json", body: `"ok"`, want: []engine.Item{{"value": "ok"}}},
		{name: "+json content type", contentType: "application/problem+json", body: `{"title": "x"}`, want: []engine.Item{{"title": "x"}}},
		{name: "text", contentType: "text/plain", body: "hello\nworld", want: []engine.Item{{"data": "hello\nworld"}}},
		{name: "no content type is text", body: `{"a": 1}`, want: []engine.Item{{"data": `{"a": 1}`}}},
		{name: "format json ignores the content type", response: `{"format": "json"}`, contentType: "text/plain", body: `{"a": 1}`, want: []engine.Item{{"a": int64(1)}}},
		{name: "format text keeps json as text", response: `{"format": "text"}`, contentType: "application/json", body: `{"a": 1}`, want: []engine.Item{{"data": `{"a": 1}`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if tc.contentType == "" {
					w.Header()["Content-Type"] = nil // keep Go from sniffing one
				}
				reply(w, http.StatusOK, tc.contentType, tc.body)
			})
			params := `{"url": "SERVER/data"}`
			if tc.response != "" {
				params = `{"url": "SERVER/data", "response": ` + tc.response + `}`
			}
			wantItems(t, execHTTP(t, loadHTTP(t, params, srv), nil), tc.want)
		})
	}
}

func TestHTTPMethods(t *testing.T) {
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} {
		t.Run(method, func(t *testing.T) {
			srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				reply(w, http.StatusOK, "application/json", `{"ok": true}`)
			})
			res := execHTTP(t, loadHTTP(t, `{"method": "`+method+`", "url": "SERVER/m"}`, srv), nil)
			want := []engine.Item{{"ok": true}}
			if method == "HEAD" {
				want = []engine.Item{{}} // a JSON content type with no body
			}
			wantItems(t, res, want)
			reqs := rec.all()
			if len(reqs) != 1 || reqs[0].Method != method {
				t.Fatalf("server saw %+v, want one %s", reqs, method)
			}
			if ua := reqs[0].Header.Get("User-Agent"); ua != "flowd" {
				t.Errorf("User-Agent = %q, want flowd", ua)
			}
		})
	}
}

// TestHTTPClientCredentials sends the access token request of RFC 6749 §4.4.2 and reads the
// response of §4.4.3, with the client's credentials from $env.
func TestHTTPClientCredentials(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		reply(w, http.StatusOK, "application/json;charset=UTF-8", `{
  "access_token":"2YotnFZFEjr1zCsicMWpAA",
  "token_type":"example",
  "expires_in":3600,
  "example_parameter":"example_value"
}`)
	})
	n := loadHTTP(t, `{
		"method": "POST",
		"url": "SERVER/token",
		"auth": {"type": "basic", "user": "{{ $env.CLIENT_ID }}", "password": "{{ $env.CLIENT_SECRET }}"},
		"bodyType": "form",
		"body": {"grant_type": "client_credentials"}
	}`, srv)
	res := execHTTP(t, n, nil, engine.WithEnv(map[string]string{"CLIENT_ID": "s6BhdRkqt3", "CLIENT_SECRET": "gX1fBat3bV"}))
	wantItems(t, res, []engine.Item{{
		"access_token":      "2YotnFZFEjr1zCsicMWpAA",
		"token_type":        "example",
		"expires_in":        int64(3600),
		"example_parameter": "example_value",
	}})

	reqs := rec.all()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	for _, c := range []struct{ what, got, want string }{
		{"method", r.Method, "POST"},
		{"path", r.Path, "/token"},
		{"Authorization", r.Header.Get("Authorization"), "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"},
		{"Content-Type", r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"},
		{"body", r.Body, "grant_type=client_credentials"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
}

func TestHTTPBodies(t *testing.T) {
	tests := []struct {
		name            string
		params          string
		items           []engine.Item
		wantContentType string
		wantBodies      []string // compared as JSON when wantContentType is JSON
	}{
		{
			name: "json body with expressions from $json",
			params: `{"method": "POST", "url": "SERVER/users", "body": {
				"name": "{{ $json.name }}", "age": "{{ $json.age }}", "greeting": "hi {{ $json.name }}",
				"tags": ["fixed", "{{ $json.tag }}"], "nested": {"ok": true, "n": 1.5}, "html": "<a&b>"}}`,
			items:           []engine.Item{{"name": "Ada", "age": int64(36), "tag": "x"}, {"name": "Bob", "age": int64(41), "tag": nil}},
			wantContentType: "application/json",
			wantBodies: []string{
				`{"name": "Ada", "age": 36, "greeting": "hi Ada", "tags": ["fixed", "x"], "nested": {"ok": true, "n": 1.5}, "html": "<a&b>"}`,
				`{"name": "Bob", "age": 41, "greeting": "hi Bob", "tags": ["fixed", null], "nested": {"ok": true, "n": 1.5}, "html": "<a&b>"}`,
			},
		},
		{
			name:            "json body from one expression",
			params:          `{"method": "PUT", "url": "SERVER/x", "bodyType": "json", "body": "{{ $json.payload }}"}`,
			items:           []engine.Item{{"payload": map[string]any{"k": []any{int64(1), "two"}}}},
			wantContentType: "application/json",
			wantBodies:      []string{`{"k": [1, "two"]}`},
		},
		{
			name:            "form body renders values as text and repeats lists",
			params:          `{"method": "POST", "url": "SERVER/form", "bodyType": "form", "body": {"scope": "{{ $json.scopes }}", "n": "{{ $json.n }}", "q": "a b&c=d"}}`,
			items:           []engine.Item{{"scopes": []any{"read", "write"}, "n": int64(3)}},
			wantContentType: "application/x-www-form-urlencoded",
			wantBodies:      []string{"n=3&q=a+b%26c%3Dd&scope=read&scope=write"},
		},
		{
			name:            "raw body with content type",
			params:          `{"method": "POST", "url": "SERVER/csv", "bodyType": "raw", "contentType": "text/csv", "body": "id,name\n{{ $json.id }},{{ $json.name }}"}`,
			items:           []engine.Item{{"id": int64(7), "name": "Ada"}},
			wantContentType: "text/csv",
			wantBodies:      []string{"id,name\n7,Ada"},
		},
		{
			name:            "raw body defaults to text/plain",
			params:          `{"method": "POST", "url": "SERVER/t", "bodyType": "raw", "body": "ping"}`,
			wantContentType: "text/plain",
			wantBodies:      []string{"ping"},
		},
		{
			name:            "a Content-Type header overrides the body's",
			params:          `{"method": "POST", "url": "SERVER/t", "headers": {"content-type": "application/vnd.api+json"}, "body": {"a": 1}}`,
			wantContentType: "application/vnd.api+json",
			wantBodies:      []string{`{"a":1}`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				reply(w, http.StatusOK, "application/json", `{"ok": true}`)
			})
			items := tc.items
			if items == nil {
				items = []engine.Item{{}}
			}
			res := execHTTP(t, loadHTTP(t, tc.params, srv), items)
			want := make([]engine.Item, len(items))
			for i := range want {
				want[i] = engine.Item{"ok": true}
			}
			wantItems(t, res, want)
			reqs := rec.all()
			if len(reqs) != len(tc.wantBodies) {
				t.Fatalf("server saw %d requests, want %d", len(reqs), len(tc.wantBodies))
			}
			for i, r := range reqs {
				if ct := r.Header.Get("Content-Type"); ct != tc.wantContentType {
					t.Errorf("request %d: Content-Type = %q, want %q", i, ct, tc.wantContentType)
				}
				if strings.HasSuffix(tc.wantContentType, "json") {
					var got, want any
					if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
						t.Fatalf("request %d: body %q: %v", i, r.Body, err)
					}
					if err := json.Unmarshal([]byte(tc.wantBodies[i]), &want); err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("request %d: body %s, want %s", i, r.Body, tc.wantBodies[i])
					}
					if strings.Contains(r.Body, `\u003c`) {
						t.Errorf("request %d: body %s escapes HTML", i, r.Body)
					}
				} else if r.Body != tc.wantBodies[i] {
					t.Errorf("request %d: body %q, want %q", i, r.Body, tc.wantBodies[i])
				}
			}
		})
	}
}

func TestHTTPAuth(t *testing.T) {
	env := map[string]string{"TOKEN": "t0ken", "KEY": "k3y", "USER": "ada", "PASS": "p@ss:word é"}
	tests := []struct {
		name   string
		auth   string
		header string
		want   string
	}{
		{"bearer", `{"type": "bearer", "token": "{{ $env.TOKEN }}"}`, "Authorization", "Bearer t0ken"},
		{"custom header", `{"type": "header", "name": "x-api-key", "value": "{{ $env.KEY }}"}`, "X-Api-Key", "k3y"},
		{"basic", `{"type": "basic", "user": "{{ $env.USER }}", "password": "{{ $env.PASS }}"}`, "Authorization", "Basic YWRhOnBAc3M6d29yZCDDqQ=="},
		{"basic without password", `{"type": "basic", "user": "ada"}`, "Authorization", "Basic YWRhOg=="},
		{"auth overrides a header of the same name", `{"type": "bearer", "token": "right"}`, "Authorization", "Bearer right"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				reply(w, http.StatusOK, "application/json", `{}`)
			})
			n := loadHTTP(t, `{"url": "SERVER/a", "headers": {"Authorization": "wrong"}, "auth": `+tc.auth+`}`, srv)
			wantItems(t, execHTTP(t, n, nil, engine.WithEnv(env)), []engine.Item{{}})
			reqs := rec.all()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			if got := reqs[0].Header.Values(tc.header); len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

// TestHTTPAuthErrorsHideTheCredential checks that a failing auth expression names the
// parameter but not the message, which may quote the value being converted.
func TestHTTPAuthErrorsHideTheCredential(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, http.StatusOK, "application/json", `{}`)
	})
	env := engine.WithEnv(map[string]string{"SECRET": "s3cr3t-value"})
	tests := []struct{ name, auth, param string }{
		{"bearer token", `{"type": "bearer", "token": "{{ int($env.SECRET) }}"}`, "parameters.auth.token"},
		{"basic password", `{"type": "basic", "user": "ada", "password": "{{ toDateTime($env.SECRET) }}"}`, "parameters.auth.password"},
		{"basic user", `{"type": "basic", "user": "{{ fromJSON($env.SECRET) }}"}`, "parameters.auth.user"},
		{"header value", `{"type": "header", "name": "X-Api-Key", "value": "{{ int($env.SECRET) }}"}`, "parameters.auth.value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.all())
			res := execHTTP(t, loadHTTP(t, `{"url": "SERVER/a", "auth": `+tc.auth+`}`, srv), nil, env)
			msg := wantFailure(t, res, tc.param+": expression failed")
			if strings.Contains(msg, "s3cr3t") {
				t.Errorf("error %q shows the credential", msg)
			}
			if hits := len(rec.all()) - before; hits != 0 {
				t.Errorf("server hits = %d, want 0", hits)
			}
		})
	}
}

// TestHTTPOutputHoldsNoSentCredential sends credentials every way the node can to a server
// that echoes its request, in its answer and in an error: no credential may come back in the
// node's output or error, while the rest of the echo does.
func TestHTTPOutputHoldsNoSentCredential(t *testing.T) {
	var rec *recorder
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, hit int) {
		echo, _ := json.Marshal(map[string]any{
			"headers": r.Header, "query": r.URL.RawQuery, "form": rec.all()[hit-1].Body, "path": r.URL.Path,
			"auth": r.Header.Get("Authorization"), "note": "you sent " + r.Header.Get("Authorization"),
		})
		if r.URL.Query().Get("fail") != "" {
			reply(w, http.StatusUnauthorized, "text/plain", "rejected: "+string(echo))
			return
		}
		reply(w, http.StatusOK, "application/json", string(echo))
	})
	secrets := engine.WithSecrets(map[string]string{
		"PASS": "pa55-w0rd", "TOKEN": "t0ken-value", "KEY": "k3y-value", "QKEY": "q-k3y/value", "FORMSECRET": "f0rm secret",
	})
	tests := []struct {
		name   string
		params string
		leaks  []string // must not come back
		keeps  string   // must come back
	}{
		{"basic auth", `{"url": "SERVER/a", "auth": {"type": "basic", "user": "ada", "password": "{{ $secrets.PASS }}"}}`,
			[]string{"pa55-w0rd", "YWRhOnBhNTUtdzByZA=="}, `"path":"/a"`},
		{"bearer auth", `{"url": "SERVER/b", "auth": {"type": "bearer", "token": "{{ $secrets.TOKEN }}"}}`,
			[]string{"t0ken-value"}, `"path":"/b"`},
		{"header auth", `{"url": "SERVER/c", "auth": {"type": "header", "name": "X-Partner-Key", "value": "{{ $secrets.KEY }}"}}`,
			[]string{"k3y-value"}, `"path":"/c"`},
		{"sensitive header", `{"url": "SERVER/d", "headers": {"X-API-Key": "{{ $secrets.KEY }}", "Authorization": "Token {{ $secrets.TOKEN }}", "X-Trace": "trace-1"}}`,
			[]string{"k3y-value", "t0ken-value"}, "trace-1"},
		{"sensitive query parameter", `{"url": "SERVER/e", "query": {"api_key": "{{ $secrets.QKEY }}", "page": "2"}}`,
			[]string{"q-k3y/value", "q-k3y%2Fvalue"}, "page=2"},
		{"key in the URL", `{"url": "SERVER/f?access_token={{ $secrets.TOKEN }}&page=3"}`,
			[]string{"t0ken-value"}, "page=3"},
		{"sensitive form field", `{"method": "POST", "url": "SERVER/g", "bodyType": "form", "body": {"client_secret": "{{ $secrets.FORMSECRET }}", "grant_type": "client_credentials"}}`,
			[]string{"f0rm secret", "f0rm+secret"}, "grant_type=client_credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := execHTTP(t, loadHTTP(t, tc.params, srv), nil, secrets)
			if len(res.Failed) > 0 {
				t.Fatalf("failed: %v", res.Failed[0].Err)
			}
			out, _ := json.Marshal(res.Ports[0])
			for _, leak := range tc.leaks {
				if strings.Contains(string(out), leak) {
					t.Errorf("output holds %q:\n%s", leak, out)
				}
			}
			if !strings.Contains(string(out), tc.keeps) || !strings.Contains(string(out), "••••") {
				t.Errorf("output lacks %q or the mask:\n%s", tc.keeps, out)
			}

			// The same request answered with an error quoting it.
			failing := strings.Replace(tc.params, `"url": "SERVER/`, `"query": {"fail": "1"}, "url": "SERVER/`, 1)
			if strings.Contains(tc.params, `"query"`) {
				failing = strings.Replace(tc.params, `"page": "2"`, `"page": "2", "fail": "1"`, 1)
			}
			res = execHTTP(t, loadHTTP(t, failing, srv), nil, secrets)
			msg := wantFailure(t, res, "HTTP 401")
			for _, leak := range tc.leaks {
				if strings.Contains(msg, leak) {
					t.Errorf("error holds %q: %s", leak, msg)
				}
			}
		})
	}
}

func TestHTTPQueryAndHeaders(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, http.StatusOK, "application/json", `{}`)
	})
	tests := []struct {
		name   string
		params string
	}{
		{"objects", `{"url": "SERVER/search?fixed=1", "query": {"page": "{{ $json.page }}", "q": "a b&c", "ids": "{{ [1, 2] }}"},
			"headers": {"X-Trace": "trace-{{ $json.trace }}", "accept": "text/csv", "User-Agent": "{{ $env.UA }}"}}`},
		{"n8n-style lists", `{"url": "SERVER/search?fixed=1",
			"query": [{"name": "page", "value": "{{ $json.page }}"}, {"name": "q", "value": "a b&c"}, {"name": "ids", "value": "{{ [1, 2] }}"}],
			"headers": [{"name": "X-Trace", "value": "trace-{{ $json.trace }}"}, {"name": "accept", "value": "text/csv"}, {"name": "User-Agent", "value": "{{ $env.UA }}"}]}`},
		{"n8n's = marker on the URL", `{"url": "=SERVER/search?fixed={{ $json.page - 1 }}", "query": {"page": "{{ $json.page }}", "q": "a b&c", "ids": "{{ [1, 2] }}"},
			"headers": {"X-Trace": "trace-{{ $json.trace }}", "accept": "text/csv", "User-Agent": "{{ $env.UA }}"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.all())
			n := loadHTTP(t, tc.params, srv)
			res := execHTTP(t, n, []engine.Item{{"page": int64(2), "trace": "abc"}}, engine.WithEnv(map[string]string{"UA": "flowd-test/1"}))
			wantItems(t, res, []engine.Item{{}})
			reqs := rec.all()[before:]
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if want := "fixed=1&page=2&q=a+b%26c&ids=1&ids=2"; r.RawQuery != want {
				t.Errorf("query = %q, want %q", r.RawQuery, want)
			}
			for name, want := range map[string]string{"X-Trace": "trace-abc", "Accept": "text/csv", "User-Agent": "flowd-test/1"} {
				if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestHTTPFullResponse(t *testing.T) {
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("X-One", "a")
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		if r.URL.Path == "/text" {
			reply(w, http.StatusCreated, "text/plain", "made")
			return
		}
		reply(w, http.StatusCreated, "application/json", `[{"id": 1}, {"id": 2}]`)
	})
	tests := []struct {
		name    string
		path    string
		bodyKey string
		body    any
	}{
		{"json", "/json", "body", []any{map[string]any{"id": int64(1)}, map[string]any{"id": int64(2)}}},
		{"text", "/text", "data", "made"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := execHTTP(t, loadHTTP(t, `{"url": "SERVER`+tc.path+`", "response": {"fullResponse": true}}`, srv), nil)
			if len(res.Failed) > 0 || len(res.Ports[0]) != 1 {
				t.Fatalf("want one item, got %v (failures %v)", res.Ports[0], res.Failed)
			}
			it := res.Ports[0][0]
			headers, _ := it["headers"].(map[string]any)
			want := engine.Item{tc.bodyKey: tc.body, "headers": headers, "statusCode": int64(201), "statusMessage": "Created"}
			if !reflect.DeepEqual(it, want) {
				t.Errorf("item:\n got  %#v\n want %#v", it, want)
			}
			if headers["x-one"] != "a" {
				t.Errorf("headers[x-one] = %#v, want \"a\"", headers["x-one"])
			}
			if got := headers["x-multi"]; !reflect.DeepEqual(got, []any{"1", "2"}) {
				t.Errorf("headers[x-multi] = %#v, want [1 2]", got)
			}
			for k := range headers {
				if k != strings.ToLower(k) {
					t.Errorf("header name %q is not lower case", k)
				}
			}
			if _, ok := headers["content-type"]; !ok {
				t.Errorf("headers lack content-type: %v", headers)
			}
		})
	}
}

func TestHTTPStatusErrors(t *testing.T) {
	long := strings.Repeat("x", 1000)
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/ok":
			reply(w, http.StatusOK, "application/json", `{"ok": true}`)
		case "/missing":
			reply(w, http.StatusNotFound, "application/json", `{"error": "no such thing"}`)
		case "/long":
			reply(w, http.StatusBadGateway, "text/html", "<html>\n  <body>"+long+"</body></html>")
		default:
			reply(w, http.StatusInternalServerError, "application/json", `{"error": "boom"}`)
		}
	})

	t.Run("non-2xx fails the item with status, request and excerpt", func(t *testing.T) {
		n := loadHTTP(t, `{"method": "POST", "url": "{{ $json.url }}", "body": {}, "auth": {"type": "basic", "user": "ada", "password": "{{ $env.PASS }}"}}`, srv)
		items := []engine.Item{{"url": srv.URL + "/fail"}, {"url": srv.URL + "/ok"}}
		res := execHTTP(t, n, items, engine.WithEnv(map[string]string{"PASS": "hunter2"}))
		msg := wantFailure(t, res)
		if want := `HTTP 500 Internal Server Error from POST ` + srv.URL + `/fail: {"error": "boom"}`; msg != want {
			t.Errorf("error:\n got  %s\n want %s", msg, want)
		}
		if f := res.Failed[0]; f.Index != 0 || !reflect.DeepEqual(f.Item, items[0]) {
			t.Errorf("failed item = %d %v, want 0 %v", f.Index, f.Item, items[0])
		}
		wantItems(t, &engine.NodeResult{Ports: res.Ports}, []engine.Item{{"ok": true}})
	})

	t.Run("messages never show credentials or the query", func(t *testing.T) {
		u := strings.Replace(srv.URL, "http://", "http://ada:pw-in-url@", 1) + "/fail?api_key=key-in-query"
		n := loadHTTP(t, `{"url": "`+u+`", "query": {"token": "query-token"}, "auth": {"type": "bearer", "token": "bearer-token"}}`, nil)
		msg := wantFailure(t, execHTTP(t, n, nil), "HTTP 500 Internal Server Error from GET "+srv.URL+"/fail?…")
		for _, secret := range []string{"pw-in-url", "key-in-query", "query-token", "bearer-token", "ada"} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q shows %q", msg, secret)
			}
		}
	})

	t.Run("excerpt is short and on one line", func(t *testing.T) {
		msg := wantFailure(t, execHTTP(t, loadHTTP(t, `{"url": "SERVER/long"}`, srv), nil), "HTTP 502 Bad Gateway from GET "+srv.URL+"/long: <html> <body>xxx")
		ex := msg[strings.Index(msg, "<html>"):]
		if len(strings.TrimSuffix(ex, "…")) > 200 || !strings.HasSuffix(ex, "…") || strings.Contains(ex, "\n") {
			t.Errorf("excerpt %q: want at most 200 bytes, one line, ending in …", ex)
		}
	})

	t.Run("neverError outputs the response", func(t *testing.T) {
		res := execHTTP(t, loadHTTP(t, `{"url": "SERVER/missing", "response": {"neverError": true}}`, srv), nil)
		wantItems(t, res, []engine.Item{{"error": "no such thing"}})
	})

	t.Run("neverError with fullResponse", func(t *testing.T) {
		res := execHTTP(t, loadHTTP(t, `{"url": "SERVER/missing", "response": {"neverError": true, "fullResponse": true}}`, srv), nil)
		if len(res.Failed) > 0 || len(res.Ports[0]) != 1 {
			t.Fatalf("want one item, got %v (failures %v)", res.Ports[0], res.Failed)
		}
		it := res.Ports[0][0]
		if it["statusCode"] != int64(404) || it["statusMessage"] != "Not Found" || !reflect.DeepEqual(it["body"], map[string]any{"error": "no such thing"}) {
			t.Errorf("item = %v", it)
		}
	})
}

func TestHTTPInvalidJSON(t *testing.T) {
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/trailing" {
			reply(w, http.StatusOK, "application/json", `{"a": 1} {"b": 2}`)
			return
		}
		reply(w, http.StatusOK, "text/plain", `{"a": not json`)
	})
	tests := []struct {
		name, params string
		parts        []string
	}{
		{"format json", `{"url": "SERVER/bad", "response": {"format": "json"}}`, []string{"invalid JSON in response (HTTP 200 OK from GET " + srv.URL + "/bad)", `{"a": not json`}},
		{"auto with a json content type", `{"url": "SERVER/trailing"}`, []string{"invalid JSON in response (HTTP 200 OK from GET " + srv.URL + "/trailing)", "data after the JSON value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantFailure(t, execHTTP(t, loadHTTP(t, tc.params, srv), nil), tc.parts...)
		})
	}
}

func TestHTTPMaxBytes(t *testing.T) {
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		reply(w, http.StatusOK, "text/plain", strings.Repeat("a", n))
	})
	tests := []struct {
		name string
		size int
		fail bool
	}{
		{"at the cap", 1000, false},
		{"one byte over", 1001, true},
		{"far over", 1 << 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := loadHTTP(t, fmt.Sprintf(`{"url": "SERVER/big?n=%d", "response": {"maxBytes": 1000}}`, tc.size), srv)
			res := execHTTP(t, n, nil)
			if tc.fail {
				wantFailure(t, res, "response body exceeds 1000 bytes")
				return
			}
			wantItems(t, res, []engine.Item{{"data": strings.Repeat("a", tc.size)}})
		})
	}
}

// blockingServer answers nothing until the client goes away or the test ends; started gets a
// value when a request arrives.
func blockingServer(t *testing.T) (*httptest.Server, *recorder, <-chan struct{}) {
	t.Helper()
	stop := make(chan struct{})
	started := make(chan struct{}, 16)
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	t.Cleanup(func() { close(stop) }) // runs before srv.Close, which waits for handlers
	return srv, rec, started
}

func TestHTTPTimeout(t *testing.T) {
	srv, _, _ := blockingServer(t)
	start := time.Now()
	res := execHTTP(t, loadHTTP(t, `{"url": "SERVER/slow", "timeout": "50ms"}`, srv), nil)
	wantFailure(t, res, "GET "+srv.URL+"/slow: timed out after 50ms")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s with a 50ms timeout", d)
	}
}

func TestHTTPCancel(t *testing.T) {
	tests := []struct {
		name   string
		params string
		slow   bool // the server blocks; else it answers 500 and the node waits to retry
	}{
		{"in-flight request", `{"url": "SERVER/slow"}`, true},
		{"retry wait", `{"url": "SERVER/fail", "retry": {"maxTries": 5, "backoff": "1h", "maxBackoff": "1h"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var srv *httptest.Server
			var started <-chan struct{}
			if tc.slow {
				srv, _, started = blockingServer(t)
			} else {
				hits := make(chan struct{}, 16)
				srv, _ = newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
					reply(w, http.StatusInternalServerError, "text/plain", "down")
					hits <- struct{}{}
				})
				started = hits
			}
			n := loadHTTP(t, tc.params, srv)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				<-started
				cancel()
			}()
			start := time.Now()
			res, err := engine.ExecNode(ctx, n, []engine.Item{{}}, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v, %v; want context.Canceled", res, err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("cancellation took %s", d)
			}
		})
	}
}

func TestHTTPRedirects(t *testing.T) {
	other, otherRec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, http.StatusOK, "application/json", `{"other": true}`)
	})
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
			return
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		if n == 0 {
			reply(w, http.StatusOK, "application/json", `{"done": true}`)
			return
		}
		http.Redirect(w, r, "/r/"+strconv.Itoa(n-1), http.StatusFound)
	})
	done := []engine.Item{{"done": true}}
	tests := []struct {
		name   string
		params string
		want   []engine.Item
		fail   string
	}{
		{name: "followed by default", params: `{"url": "SERVER/r/3"}`, want: done},
		{name: "not followed", params: `{"url": "SERVER/r/3", "followRedirects": false}`, fail: "HTTP 302 Found from GET " + srv.URL + "/r/3"},
		{name: "within maxRedirects", params: `{"url": "SERVER/r/3", "maxRedirects": 3}`, want: done},
		{name: "over maxRedirects", params: `{"url": "SERVER/r/3", "maxRedirects": 2}`, fail: "GET " + srv.URL + "/r/3: too many redirects (maxRedirects is 2)"},
		{name: "huge maxRedirects", params: `{"url": "SERVER/r/3", "maxRedirects": 1e19}`, want: done},
		{name: "maxRedirects beyond float64's range", params: `{"url": "SERVER/r/3", "maxRedirects": 1e400}`, want: done},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := execHTTP(t, loadHTTP(t, tc.params, srv), nil)
			if tc.fail != "" {
				wantFailure(t, res, tc.fail)
				return
			}
			wantItems(t, res, tc.want)
		})
	}

	t.Run("not followed, neverError shows the redirect", func(t *testing.T) {
		res := execHTTP(t, loadHTTP(t, `{"url": "SERVER/r/3", "followRedirects": false, "response": {"neverError": true, "fullResponse": true, "format": "text"}}`, srv), nil)
		if len(res.Failed) > 0 || len(res.Ports[0]) != 1 {
			t.Fatalf("want one item, got %v (failures %v)", res.Ports[0], res.Failed)
		}
		it := res.Ports[0][0]
		if it["statusCode"] != int64(302) || it["headers"].(map[string]any)["location"] != "/r/2" {
			t.Errorf("item = %v, want status 302 and location /r/2", it)
		}
	})

	for _, tc := range []struct{ name, auth, header string }{
		{"bearer", `{"type": "bearer", "token": "secret"}`, "Authorization"},
		{"custom header", `{"type": "header", "name": "X-Api-Key", "value": "secret"}`, "X-Api-Key"},
	} {
		t.Run("redirect to another host drops "+tc.name+" auth", func(t *testing.T) {
			before := len(otherRec.all())
			res := execHTTP(t, loadHTTP(t, `{"url": "SERVER/away", "auth": `+tc.auth+`}`, srv), nil)
			wantItems(t, res, []engine.Item{{"other": true}})
			reqs := otherRec.all()[before:]
			if len(reqs) != 1 {
				t.Fatalf("other server saw %d requests, want 1", len(reqs))
			}
			if v := reqs[0].Header.Get(tc.header); v != "" {
				t.Errorf("other host received %s: %q", tc.header, v)
			}
		})
	}
}

func TestHTTPRetry(t *testing.T) {
	tests := []struct {
		name     string
		retry    string
		handler  func(w http.ResponseWriter, r *http.Request, hit int)
		wantHits int
		fail     []string
	}{
		{
			name:  "500 then success",
			retry: `{"maxTries": 3, "backoff": "1ms"}`,
			handler: func(w http.ResponseWriter, r *http.Request, hit int) {
				if hit < 3 {
					reply(w, http.StatusInternalServerError, "text/plain", "down")
					return
				}
				reply(w, http.StatusOK, "application/json", `{"ok": true}`)
			},
			wantHits: 3,
		},
		{
			name:  "maxTries beyond float64's range",
			retry: `{"maxTries": 1e400, "backoff": "1ms"}`,
			handler: func(w http.ResponseWriter, r *http.Request, hit int) {
				if hit < 3 {
					reply(w, http.StatusInternalServerError, "text/plain", "down")
					return
				}
				reply(w, http.StatusOK, "application/json", `{"ok": true}`)
			},
			wantHits: 3,
		},
		{
			name:  "network error then success",
			retry: `{"maxTries": 2, "backoff": "1ms"}`,
			handler: func(w http.ResponseWriter, r *http.Request, hit int) {
				if hit == 1 {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
					return
				}
				reply(w, http.StatusOK, "application/json", `{"ok": true}`)
			},
			wantHits: 2,
		},
		{
			name:  "gives up after maxTries",
			retry: `{"maxTries": 2, "backoff": "1ms"}`,
			handler: func(w http.ResponseWriter, r *http.Request, hit int) {
				reply(w, http.StatusServiceUnavailable, "text/plain", "busy")
			},
			wantHits: 2,
			fail:     []string{"HTTP 503 Service Unavailable from GET ", ": busy (gave up after 2 tries)"},
		},
		{
			name:  "no retry on 400",
			retry: `{"maxTries": 3, "backoff": "1ms"}`,
			handler: func(w http.ResponseWriter, r *http.Request, hit int) {
				reply(w, http.StatusBadRequest, "application/json", `{"error": "bad"}`)
			},
			wantHits: 1,
			fail:     []string{"HTTP 400 Bad Request from GET "},
		},
		{
			name: "no retry by default",
			handler: func(w http.ResponseWriter, r *http.Request, hit int) {
				reply(w, http.StatusInternalServerError, "text/plain", "down")
			},
			wantHits: 1,
			fail:     []string{"HTTP 500 Internal Server Error"},
		},
		{
			name:  "retried 5xx under neverError ends in the last response",
			retry: `{"maxTries": 2, "backoff": "1ms"}, "response": {"neverError": true}`,
			handler: func(w http.ResponseWriter, r *http.Request, hit int) {
				reply(w, http.StatusBadGateway, "application/json", `{"hit": `+strconv.Itoa(hit)+`}`)
			},
			wantHits: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := newServer(t, tc.handler)
			params := `{"url": "SERVER/r"}`
			if tc.retry != "" {
				params = `{"url": "SERVER/r", "retry": ` + tc.retry + `}`
			}
			res := execHTTP(t, loadHTTP(t, params, srv), nil)
			if hits := len(rec.all()); hits != tc.wantHits {
				t.Errorf("server hits = %d, want %d", hits, tc.wantHits)
			}
			if tc.fail != nil {
				wantFailure(t, res, tc.fail...)
				return
			}
			if len(res.Failed) > 0 || len(res.Ports[0]) != 1 {
				t.Errorf("want one item, got %v (failures %v)", res.Ports[0], res.Failed)
			}
		})
	}
}

func TestHTTPRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter func() string
		retry      string
		minGap     time.Duration
		maxGap     time.Duration
	}{
		{
			name:       "seconds",
			retryAfter: func() string { return "1" },
			retry:      `{"maxTries": 2, "backoff": "1ms"}`,
			minGap:     time.Second,
			maxGap:     10 * time.Second,
		},
		{
			name:       "capped by maxBackoff",
			retryAfter: func() string { return "3600" },
			retry:      `{"maxTries": 2, "backoff": "1ms", "maxBackoff": "50ms"}`,
			minGap:     50 * time.Millisecond,
			maxGap:     10 * time.Second,
		},
		{
			name:       "HTTP date",
			retryAfter: func() string { return time.Now().Add(time.Hour).UTC().Format(http.TimeFormat) },
			retry:      `{"maxTries": 2, "backoff": "1ms", "maxBackoff": "50ms"}`,
			minGap:     50 * time.Millisecond,
			maxGap:     10 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, hit int) {
				if hit == 1 {
					w.Header().Set("Retry-After", tc.retryAfter())
					reply(w, http.StatusTooManyRequests, "text/plain", "slow down")
					return
				}
				reply(w, http.StatusOK, "application/json", `{"ok": true}`)
			})
			res := execHTTP(t, loadHTTP(t, `{"url": "SERVER/r", "retry": `+tc.retry+`}`, srv), nil)
			wantItems(t, res, []engine.Item{{"ok": true}})
			reqs := rec.all()
			if len(reqs) != 2 {
				t.Fatalf("server hits = %d, want 2", len(reqs))
			}
			if gap := reqs[1].At.Sub(reqs[0].At); gap < tc.minGap || gap > tc.maxGap {
				t.Errorf("second try came %s after the first, want between %s and %s", gap, tc.minGap, tc.maxGap)
			}
		})
	}

	t.Run("not retried when the wait would pass the deadline", func(t *testing.T) {
		srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, hit int) {
			w.Header().Set("Retry-After", "60")
			reply(w, http.StatusServiceUnavailable, "text/plain", "maintenance")
		})
		n := loadHTTP(t, `{"url": "SERVER/r", "retry": {"maxTries": 3, "maxBackoff": "2m"}}`, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := engine.ExecNode(ctx, n, []engine.Item{{}}, nil)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		wantFailure(t, res, "HTTP 503 Service Unavailable", "maintenance (not retried: waiting 1m0s would pass the deadline)")
		if hits := len(rec.all()); hits != 1 {
			t.Errorf("server hits = %d, want 1", hits)
		}
	})
}

func TestHTTPItemErrors(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, http.StatusOK, "application/json", `{"ok": true}`)
	})
	tests := []struct {
		name   string
		params string
		item   engine.Item
		fail   string
	}{
		{"relative URL", `{"url": "{{ $json.u }}"}`, engine.Item{"u": "/just/a/path"}, `parameters.url: want an absolute http or https URL, got "/just/a/path"`},
		{"other scheme", `{"url": "{{ $json.u }}"}`, engine.Item{"u": "ftp://127.0.0.1/x"}, `parameters.url: want an absolute http or https URL, got "ftp://127.0.0.1/x"`},
		{"unparsable URL", `{"url": "{{ $json.u }}"}`, engine.Item{"u": "http://[::1"}, `parameters.url: invalid URL: missing ']' in host`},
		{"bad URL hides the password", `{"url": "{{ $json.u }}"}`, engine.Item{"u": "ftp://ada:hunter2@127.0.0.1/x"}, `parameters.url: want an absolute http or https URL, got "ftp://127.0.0.1/x"`},
		{"bad URL hides a token in the user name", `{"url": "{{ $json.u }}"}`, engine.Item{"u": "ftp://hunter2@127.0.0.1/x"}, `parameters.url: want an absolute http or https URL, got "ftp://127.0.0.1/x"`},
		{"bad URL hides the query and fragment", `{"url": "{{ $json.u }}/v1/token?key={{ $json.s }}"}`, engine.Item{"u": nil, "s": "hunter2#hunter2"}, `parameters.url: want an absolute http or https URL, got "/v1/token?…"`},
		{"expression error", `{"url": "SERVER/{{ int($json.s) }}"}`, engine.Item{"s": "abc"}, "parameters.url: int($json.s): "},
		{"form body not an object", `{"method": "POST", "url": "SERVER/f", "bodyType": "form", "body": "{{ $json.f }}"}`, engine.Item{"f": "text"}, "parameters.body: a form body must be an object, got a string"},
		{"header with a line break", `{"url": "SERVER/h", "headers": {"X-A": "{{ $json.v }}"}}`, engine.Item{"v": "a\r\nX-Injected: 1"}, "parameters.headers.X-A: value holds a line break or control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.all())
			n := loadHTTP(t, tc.params, srv)
			good := engine.Item{"u": srv.URL + "/ok", "f": map[string]any{"a": "b"}, "v": "fine", "s": "1"}
			res := execHTTP(t, n, []engine.Item{tc.item, good})
			msg := wantFailure(t, res, tc.fail)
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q shows the password", msg)
			}
			if res.Failed[0].Index != 0 {
				t.Errorf("failed index = %d, want 0", res.Failed[0].Index)
			}
			if len(res.Ports[0]) != 1 {
				t.Errorf("the next item was not sent: items %v", res.Ports[0])
			}
			if hits := len(rec.all()) - before; hits != 1 {
				t.Errorf("server hits = %d, want 1 (the good item only)", hits)
			}
		})
	}
}

func TestHTTPLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		params string
		want   []string
		not    []string
	}{
		{name: "missing url", params: `{}`, want: []string{"parameters.url: required"}},
		{name: "unknown parameter", params: `{"url": "http://127.0.0.1/", "hedaers": {}}`, want: []string{`parameters.hedaers: unknown parameter (did you mean "headers"?)`}},
		{name: "bad method", params: `{"url": "http://127.0.0.1/", "method": "FETCH"}`, want: []string{`parameters.method: "FETCH" is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS`}},
		{name: "lower-case method", params: `{"url": "http://127.0.0.1/", "method": "post"}`, want: []string{`(did you mean "POST"?)`}},
		{name: "bad auth type", params: `{"url": "http://127.0.0.1/", "auth": {"type": "basci", "user": "u", "password": "p"}}`,
			want: []string{`parameters.auth.type: "basci" is not one of basic, bearer, header (did you mean "basic"?)`}, not: []string{"unknown key"}},
		{name: "auth without type", params: `{"url": "http://127.0.0.1/", "auth": {"token": "t"}}`, want: []string{"parameters.auth: type: required"}},
		{name: "auth key of another type", params: `{"url": "http://127.0.0.1/", "auth": {"type": "bearer", "user": "u"}}`,
			want: []string{"parameters.auth.token: required with type bearer", "parameters.auth.user: unknown key"}},
		{name: "bad auth header name", params: `{"url": "http://127.0.0.1/", "auth": {"type": "header", "name": "X Api", "value": "v"}}`, want: []string{`parameters.auth.name: "X Api" is not a valid header name`}},
		{name: "unknown response key", params: `{"url": "http://127.0.0.1/", "response": {"fromat": "json"}}`, want: []string{`parameters.response.fromat: unknown key (did you mean "format"?)`}},
		{name: "bad response format", params: `{"url": "http://127.0.0.1/", "response": {"format": "xml"}}`, want: []string{`parameters.response.format: "xml" is not one of auto, json, text`}},
		{name: "maxBytes not positive", params: `{"url": "http://127.0.0.1/", "response": {"maxBytes": 0}}`, want: []string{"parameters.response.maxBytes: must be positive, got 0"}},
		{name: "maxBytes too big for an int", params: `{"url": "http://127.0.0.1/", "response": {"maxBytes": 1e19}}`, want: []string{"parameters.response.maxBytes: must be at most 1073741824 (1 GiB), got 1e+19"}},
		{name: "maxBytes beyond float64's range", params: `{"url": "http://127.0.0.1/", "response": {"maxBytes": 1e400}}`, want: []string{"parameters.response.maxBytes: must be at most 1073741824 (1 GiB), got +Inf"}},
		{name: "maxBytes not whole", params: `{"url": "http://127.0.0.1/", "response": {"maxBytes": 2.5}}`, want: []string{"parameters.response.maxBytes: want a whole number, got 2.5"}},
		{name: "maxTries below one", params: `{"url": "http://127.0.0.1/", "retry": {"maxTries": 0}}`, want: []string{"parameters.retry.maxTries: must be at least 1, got 0"}},
		{name: "maxTries hugely negative", params: `{"url": "http://127.0.0.1/", "retry": {"maxTries": -1e19}}`, want: []string{"parameters.retry.maxTries: must be at least 1, got -1e+19"}},
		{name: "maxRedirects beyond float64's range, negative", params: `{"url": "http://127.0.0.1/", "maxRedirects": -1e400}`, want: []string{"parameters.maxRedirects: must not be negative, got -Inf"}},
		{name: "backoff over maxBackoff", params: `{"url": "http://127.0.0.1/", "retry": {"backoff": "1m"}}`, want: []string{"parameters.retry.backoff: 1m0s exceeds maxBackoff 10s"}},
		{name: "unknown retry key", params: `{"url": "http://127.0.0.1/", "retry": {"maxRetries": 3}}`, want: []string{`parameters.retry.maxRetries: unknown key (did you mean "maxTries"?)`}},
		{name: "bad timeout", params: `{"url": "http://127.0.0.1/", "timeout": "soon"}`, want: []string{"parameters.timeout: want a duration"}},
		{name: "negative maxRedirects", params: `{"url": "http://127.0.0.1/", "maxRedirects": -1}`, want: []string{"parameters.maxRedirects: must not be negative"}},
		{name: "literal URL with another scheme", params: `{"url": "ftp://127.0.0.1/x"}`, want: []string{`parameters.url: want an absolute http or https URL, got "ftp://127.0.0.1/x"`}},
		{name: "relative literal URL", params: `{"url": "/token"}`, want: []string{`parameters.url: want an absolute http or https URL, got "/token"`}},
		{name: "URL template with another scheme", params: `{"url": "file:///{{ $json.p }}"}`, want: []string{`parameters.url: want an absolute http or https URL, not scheme "file"`}},
		{name: "URL template without a scheme", params: `{"url": "api.example.com/{{ $json.p }}"}`, want: []string{`parameters.url: want an absolute http or https URL, got "api.example.com/…"`}},
		{name: "bad header name", params: `{"url": "http://127.0.0.1/", "headers": {"Bad Header": "x"}}`, want: []string{`parameters.headers: "Bad Header" is not a valid header name`}},
		{name: "header list entry without name", params: `{"url": "http://127.0.0.1/", "headers": [{"value": "x"}]}`, want: []string{"parameters.headers[0].name: required"}, not: []string{"valid header name"}},
		{name: "empty header name", params: `{"url": "http://127.0.0.1/", "headers": {"": "x"}}`, want: []string{`parameters.headers: "" is not a valid header name`}},
		{name: "empty query name", params: `{"url": "http://127.0.0.1/", "query": {"": "x"}}`, want: []string{"parameters.query: a query parameter needs a name"}},
		{name: "bad expression in a header", params: `{"url": "http://127.0.0.1/", "headers": {"X-A": "{{ 1 + }}"}}`, want: []string{"parameters.headers.X-A: expression {{ 1 + }}"}},
		{name: "body with bodyType none", params: `{"url": "http://127.0.0.1/", "bodyType": "none", "body": {"a": 1}}`, want: []string{"parameters.body: given, but bodyType is none"}},
		{name: "form body not an object", params: `{"url": "http://127.0.0.1/", "bodyType": "form", "body": [1, 2]}`, want: []string{"parameters.body: a form body is an object of field: value"}},
		{name: "raw body missing", params: `{"url": "http://127.0.0.1/", "bodyType": "raw"}`, want: []string{"parameters.body: required with bodyType raw"}},
		{name: "contentType without raw", params: `{"url": "http://127.0.0.1/", "body": {}, "contentType": "text/csv"}`, want: []string{"parameters.contentType: applies to bodyType raw only"}},
		{name: "bad bodyType", params: `{"url": "http://127.0.0.1/", "bodyType": "xml"}`, want: []string{`parameters.bodyType: "xml" is not one of json, form, raw, none`}},
		{
			name:   "every problem is reported",
			params: `{"url": "ftp://x", "method": "FETCH", "auth": {"type": "nope"}, "retry": {"maxTries": 0}}`,
			want:   []string{"parameters.url:", "parameters.method:", "parameters.auth.type:", "parameters.retry.maxTries:"},
		},
	}
	reg := nodes.NewRegistry()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&engine.Loader{Registry: reg}).LoadNode("httpRequest", tc.params)
			if err == nil {
				t.Fatalf("loaded %s without error", tc.params)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(msg, w) {
					t.Errorf("error contains %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestHTTPLoadErrorPosition loads a flow file so the line and column are known: an expression
// error in the URL points at the expression inside the string.
func TestHTTPLoadErrorPosition(t *testing.T) {
	src := `{
  "id": "token-refresh",
  "nodes": [
    {
      "name": "get token",
      "type": "n8n-nodes-base.httpRequest",
      "parameters": {
        "url": "https://example.com/{{ nope(1) }}"
      }
    }
  ]
}`
	_, probs := (&engine.Loader{Registry: nodes.NewRegistry()}).Load("flows/token.json", []byte(src))
	errs := probs.Errors()
	if len(errs) != 1 {
		t.Fatalf("want 1 problem, got %d:\n%v", len(errs), errs)
	}
	// Line 8; column 40 is the "n" of nope, inside the string literal.
	want := `flows/token.json:8:40: node "get token": parameters.url: expression {{ nope(1) }}: unknown name nope`
	if got := errs[0].Error(); !strings.HasPrefix(got, want) {
		t.Errorf("problem:\n got  %s\n want %s…", got, want)
	}
}

// TestHTTPConcurrentRuns runs one node from several goroutines: a built node is shared by
// every run of its flow.
func TestHTTPConcurrentRuns(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, http.StatusOK, "application/json", `{"path": "`+r.URL.Path+`"}`)
	})
	n := loadHTTP(t, `{"url": "SERVER/{{ $json.i }}", "retry": {"maxTries": 2, "backoff": "1ms"}}`, srv)
	const runs = 8
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := range runs {
		wg.Go(func() {
			res, err := engine.ExecNode(context.Background(), n, []engine.Item{{"i": int64(i)}}, nil)
			switch {
			case err != nil:
				errs <- err
			case len(res.Failed) > 0:
				errs <- res.Failed[0].Err
			case len(res.Ports[0]) != 1 || res.Ports[0][0]["path"] != fmt.Sprintf("/%d", i):
				errs <- fmt.Errorf("run %d: items %v", i, res.Ports[0])
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if hits := len(rec.all()); hits != runs {
		t.Errorf("server hits = %d, want %d", hits, runs)
	}
}
