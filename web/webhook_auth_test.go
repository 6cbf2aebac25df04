package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// The test secrets' values, and credentials a client might wrongly present: none may ever
// appear in a response, a log line or a run record.
const (
	hookToken    = "tok-3f9a1c77e2"
	hookPassword = "pa55:w0rd-91d"
	hookKey      = "hmac-key-0b7e"
	wrongCred    = "wrong-cred-5c2e8"
)

// mapSecrets is an engine.Secrets from a map.
type mapSecrets map[string]string

func (s mapSecrets) Secret(name string) (string, bool) {
	v, ok := s[name]
	return v, ok
}

var hookSecrets = mapSecrets{"HOOK_TOKEN": hookToken, "HOOK_PASSWORD": hookPassword, "HOOK_KEY": hookKey, "EMPTY": ""}

// guardedFlow is a flow whose webhook "Hook", with these parameters, feeds a noOp.
func guardedFlow(params string) string {
	return `{"nodes": [{"name": "Hook", "type": "webhook", "parameters": ` + params + `}, {"name": "Done", "type": "noOp"}],
		"connections": {"Hook": ["Done"]}}`
}

var authFlows = map[string]string{
	"bearer.json":  guardedFlow(`{"path": "bearer", "httpMethod": "POST", "authentication": "headerAuth", "secret": "HOOK_TOKEN"}`),
	"apikey.json":  guardedFlow(`{"path": "apikey", "httpMethod": "POST", "authentication": "headerAuth", "secret": "HOOK_TOKEN", "headerName": "X-Api-Key"}`),
	"basic.json":   guardedFlow(`{"path": "basic", "httpMethod": "POST", "authentication": "basicAuth", "user": "sender", "secret": "HOOK_PASSWORD"}`),
	"signed.json":  guardedFlow(`{"path": "signed", "httpMethod": "POST", "authentication": "hmac", "secret": "HOOK_KEY"}`),
	"unset.json":   guardedFlow(`{"path": "unset", "httpMethod": "POST", "authentication": "headerAuth", "secret": "NOT_SET"}`),
	"empty.json":   guardedFlow(`{"path": "empty", "httpMethod": "POST", "authentication": "headerAuth", "secret": "EMPTY"}`),
	"limited.json": guardedFlow(`{"path": "limited", "rateLimit": "3/h"}`),
	"signedlimited.json": guardedFlow(`{"path": "signedlimited", "httpMethod": "POST", "authentication": "hmac", "secret": "HOOK_KEY",
		"rateLimit": "1/h"}`),
}

// swapFlows is a FlowSource whose set a test replaces, as a reload does.
type swapFlows struct{ set atomic.Pointer[FlowSet] }

func (s *swapFlows) Current() *FlowSet { return s.set.Load() }

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hookEnv is a server with secrets, flows a test can swap and a log it can read.
type hookEnv struct {
	*env
	flows *swapFlows
	logs  *lockedBuffer
}

func newHookEnv(t *testing.T, srcs map[string]string, secrets engine.Secrets) *hookEnv {
	t.Helper()
	flows := &swapFlows{}
	flows.set.Store(newSet(t, srcs))
	store := newMemStore()
	m := NewMetrics()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	x := &engine.Executor{Store: m.Store(store), Logger: log, Env: map[string]string{}}
	srv := New(Config{Flows: flows, Runner: x, Runs: store, Static: store, Metrics: m, Secrets: secrets, Logger: log})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &hookEnv{env: &env{store: store, metrics: m, server: srv, url: hs.URL}, flows: flows, logs: logs}
}

func newSet(t *testing.T, srcs map[string]string) *FlowSet {
	t.Helper()
	set, err := NewFlowSet(loadFlows(t, srcs))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// runCount is how many runs the store holds.
func (e *hookEnv) runCount(t *testing.T) int {
	t.Helper()
	runs, err := e.store.ListRuns(context.Background(), engine.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(runs)
}

// check checks a response: an accepted one (status 200) must have started a run, which it
// returns finished; a refused one must carry the error want and no run id.
func (e *hookEnv) check(t *testing.T, res *response, status int, want string) *engine.Run {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d; body %s", res.status, status, res.body)
	}
	id := res.header.Get(runIDHeader)
	if status == http.StatusOK {
		if id == "" {
			t.Fatalf("accepted without a run: %s", res.body)
		}
		return e.store.waitRun(t, id)
	}
	body := res.json(t)
	if msg := fmt.Sprint(body["error"]); !strings.Contains(msg, want) || body["code"] != json.Number(strconv.Itoa(status)) {
		t.Fatalf("body %s, want error containing %q", res.body, want)
	}
	if id != "" {
		t.Fatalf("a refused request started run %s", id)
	}
	return nil
}

// noLeaks fails when a secret's value or a presented credential appears in the responses,
// the log or a stored run.
func (e *hookEnv) noLeaks(t *testing.T, responses ...*response) {
	t.Helper()
	var stored []string
	runs, _ := e.store.ListRuns(context.Background(), engine.RunFilter{})
	for _, r := range runs {
		full, err := e.store.GetRun(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(full)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, string(data))
	}
	for _, res := range responses {
		stored = append(stored, string(res.body))
	}
	all := strings.Join(stored, "\n") + e.logs.String()
	basic := base64.StdEncoding.EncodeToString([]byte("sender:" + hookPassword))
	for _, s := range []string{hookToken, hookPassword, hookKey, wrongCred, basic} {
		if strings.Contains(all, s) {
			t.Errorf("%q leaked into a response, the log or a run record", s)
		}
	}
}

func TestWebhookHeaderAuth(t *testing.T) {
	e := newHookEnv(t, authFlows, hookSecrets)
	tests := []struct {
		name, target string
		header       []string
		status       int
		want         string
		challenge    string
	}{
		{"bearer token", "/webhook/bearer", []string{"Authorization", "Bearer " + hookToken}, 200, "", ""},
		{"bearer scheme in any case", "/webhook/bearer", []string{"Authorization", "bearer  " + hookToken}, 200, "", ""},
		{"bare token in Authorization", "/webhook/bearer", []string{"Authorization", hookToken}, 200, "", ""},
		{"named header", "/webhook/apikey", []string{"X-Api-Key", hookToken}, 200, "", ""},
		{"no Authorization", "/webhook/bearer", nil, 401, "webhook authentication failed: no Authorization header", bearerChallenge},
		{"wrong bearer token", "/webhook/bearer", []string{"Authorization", "Bearer " + wrongCred}, 403, "wrong token in the Authorization header", ""},
		{"token with a suffix", "/webhook/bearer", []string{"Authorization", "Bearer " + hookToken + "x"}, 403, "wrong token", ""},
		{"token prefix only", "/webhook/bearer", []string{"Authorization", "Bearer " + hookToken[:5]}, 403, "wrong token", ""},
		{"another scheme", "/webhook/bearer", []string{"Authorization", "Token " + hookToken}, 403, "wrong token", ""},
		{"empty token", "/webhook/bearer", []string{"Authorization", "Bearer "}, 403, "wrong token", ""},
		{"no named header", "/webhook/apikey", []string{"Authorization", "Bearer " + hookToken}, 401, "no X-Api-Key header", ""},
		{"wrong named header", "/webhook/apikey", []string{"X-Api-Key", wrongCred}, 403, "wrong token in the X-Api-Key header", ""},
		{"named header given twice", "/webhook/apikey", []string{"X-Api-Key", hookToken, "X-Api-Key", wrongCred}, 403, "X-Api-Key header given 2 times", ""},
		{"bearer form only for Authorization", "/webhook/apikey", []string{"X-Api-Key", "Bearer " + hookToken}, 403, "wrong token", ""},
	}
	var responses []*response
	accepted := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, http.MethodPost, tt.target, "application/json", strings.NewReader(`{"n": 1}`), tt.header...)
			responses = append(responses, res)
			if got := res.header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			run := e.check(t, res, tt.status, tt.want)
			if run == nil {
				return
			}
			accepted++
			headers := run.Nodes[0].Input[0]["headers"].(map[string]any)
			if _, ok := headers["authorization"]; ok || headers["x-api-key"] != nil {
				t.Errorf("the credential header reached the run: %v", headers)
			}
			if headers["content-type"] != "application/json" {
				t.Errorf("other headers should reach the run: %v", headers)
			}
		})
	}
	if n := e.runCount(t); n != accepted {
		t.Errorf("%d runs, want %d (one per accepted request)", n, accepted)
	}
	e.noLeaks(t, responses...)
}

func TestWebhookBasicAuth(t *testing.T) {
	e := newHookEnv(t, authFlows, hookSecrets)
	basic := func(user, pass string) []string {
		return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
	}
	tests := []struct {
		name      string
		header    []string
		status    int
		want      string
		challenge string
	}{
		{"right user and password", basic("sender", hookPassword), 200, "", ""},
		{"no credentials", nil, 401, "no basic credentials", basicChallenge},
		{"wrong password", basic("sender", wrongCred), 403, "wrong user or password", ""},
		{"wrong user", basic("someone", hookPassword), 403, "wrong user or password", ""},
		{"password cut at its colon", basic("sender", strings.Split(hookPassword, ":")[0]), 403, "wrong user or password", ""},
		{"empty password", basic("sender", ""), 403, "wrong user or password", ""},
		{"bearer instead", []string{"Authorization", "Bearer " + hookPassword}, 403, "does not hold basic credentials", ""},
		{"not base64", []string{"Authorization", "Basic !!!"}, 403, "does not hold basic credentials", ""},
	}
	var responses []*response
	accepted := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, http.MethodPost, "/webhook/basic", "text/plain", strings.NewReader("hi"), tt.header...)
			responses = append(responses, res)
			if got := res.header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if run := e.check(t, res, tt.status, tt.want); run != nil {
				accepted++
				if _, ok := run.Nodes[0].Input[0]["headers"].(map[string]any)["authorization"]; ok {
					t.Error("the Authorization header reached the run")
				}
			}
		})
	}
	if n := e.runCount(t); n != accepted {
		t.Errorf("%d runs, want %d", n, accepted)
	}
	e.noLeaks(t, responses...)
}

// sign is what a sender computes: "sha256=" + hex(HMAC-SHA256(key, timestamp + "." + body)).
func sign(key, ts, body string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(ts + "." + body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// TestVerifyHMACKnownAnswer pins the scheme to a signature computed outside Go, with the
// command docs/flow-format.md gives:
//
//	printf '%s.%s' 1700000000 '{"event":"ping"}' | openssl dgst -sha256 -hmac hmac-key-0b7e -hex
func TestVerifyHMACKnownAnswer(t *testing.T) {
	const want = "60ae968f772a8df57840a379b7a22c1497e0047bcdee78a71ab4f0eb1b44d372"
	if got := sign(hookKey, "1700000000", `{"event":"ping"}`); got != "sha256="+want {
		t.Fatalf("sign = %s", got)
	}
	a := &nodes.WebhookAuth{Type: nodes.AuthHMAC, SignatureHeader: "X-Flowd-Signature", TimestampHeader: "X-Flowd-Timestamp", Tolerance: 5 * time.Minute}
	r := httptest.NewRequest(http.MethodPost, "/webhook/x", nil)
	r.Header.Set("X-Flowd-Signature", "sha256="+want)
	r.Header.Set("X-Flowd-Timestamp", "1700000000")
	at := time.Unix(1700000000, 0)
	if f := verify(r, a, hookKey, []byte(`{"event":"ping"}`), at.Add(299*time.Second)); f != nil {
		t.Fatalf("refused: %+v", f)
	}
	if f := verify(r, a, hookKey, []byte(`{"event":"ping"}`), at.Add(301*time.Second)); f == nil || f.reason != authExpired {
		t.Fatalf("301s later: %+v", f)
	}
	if f := verify(r, a, hookKey, []byte(`{"event":"ping"} `), at); f == nil || f.reason != authInvalid {
		t.Fatalf("one byte more: %+v", f)
	}
}

func TestWebhookHMAC(t *testing.T) {
	e := newHookEnv(t, authFlows, hookSecrets)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	at := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }
	// raw is JSON whose bytes the server would never produce again from the parsed value.
	const raw = "{\"b\": 2,\n   \"a\": [1.50, \"x\"],  \"u\": \"\\u00e9\"}"
	headers := func(sig, ts string) []string {
		return []string{"X-Flowd-Signature", sig, "X-Flowd-Timestamp", ts}
	}
	tests := []struct {
		name   string
		body   string
		header []string
		status int
		want   string
	}{
		{"right signature", raw, headers(sign(hookKey, now, raw), now), 200, ""},
		{"upper-case hex", raw, headers("sha256="+strings.ToUpper(strings.TrimPrefix(sign(hookKey, now, raw), "sha256=")), now), 200, ""},
		{"empty body", "", headers(sign(hookKey, now, ""), now), 200, ""},
		{"four minutes old", raw, headers(sign(hookKey, at(-4*time.Minute), raw), at(-4*time.Minute)), 200, ""},
		{"tampered body", strings.Replace(raw, "2", "3", 1), headers(sign(hookKey, now, raw), now), 403, "the signature does not match the timestamp and body"},
		{"re-encoded body", `{"a":[1.5,"x"],"b":2,"u":"é"}`, headers(sign(hookKey, now, raw), now), 403, "the signature does not match"},
		{"another key", raw, headers(sign(wrongCred, now, raw), now), 403, "the signature does not match"},
		{"timestamp changed", raw, headers(sign(hookKey, now, raw), at(-time.Second)), 403, "the signature does not match"},
		{"stale", raw, headers(sign(hookKey, at(-10*time.Minute), raw), at(-10*time.Minute)), 403, "old; at most 300s is accepted"},
		{"future", raw, headers(sign(hookKey, at(10*time.Minute), raw), at(10*time.Minute)), 403, "in the future; at most 300s is accepted"},
		{"no signature", raw, []string{"X-Flowd-Timestamp", now}, 401, "no X-Flowd-Signature header"},
		{"no timestamp", raw, []string{"X-Flowd-Signature", sign(hookKey, now, raw)}, 401, "no X-Flowd-Timestamp header"},
		{"no headers", raw, nil, 401, "no X-Flowd-Signature header"},
		{"bare hex", raw, headers(strings.TrimPrefix(sign(hookKey, now, raw), "sha256="), now), 403, `must be "sha256=" and 64 hex digits`},
		{"short signature", raw, headers(sign(hookKey, now, raw)[:20], now), 403, "64 hex digits"},
		{"not hex", raw, headers("sha256="+strings.Repeat("zz", 32), now), 403, "64 hex digits"},
		{"signed negative timestamp", raw, headers(sign(hookKey, "-"+now, raw), "-"+now), 403, "must be the unix time in whole seconds"},
		{"timestamp in milliseconds", raw, headers(sign(hookKey, now+"000", raw), now+"000"), 403, "unix time in whole seconds"},
		{"huge timestamp", raw, headers(sign(hookKey, "9999999999999999999", raw), "9999999999999999999"), 403, "unix time in whole seconds"},
		{"signature twice", raw, append(headers(sign(hookKey, now, raw), now), "X-Flowd-Signature", "sha256=00"), 403, "X-Flowd-Signature header given 2 times"},
	}
	var responses []*response
	accepted := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, http.MethodPost, "/webhook/signed", "application/json", strings.NewReader(tt.body), tt.header...)
			responses = append(responses, res)
			run := e.check(t, res, tt.status, tt.want)
			if run == nil {
				return
			}
			accepted++
			if tt.body != raw {
				return
			}
			// The signature covered the raw bytes; the run still gets the parsed JSON.
			body := run.Nodes[0].Input[0]["body"].(map[string]any)
			if body["b"] != int64(2) || body["u"] != "é" || body["a"].([]any)[0] != 1.5 {
				t.Errorf("parsed body %v", body)
			}
		})
	}
	if n := e.runCount(t); n != accepted {
		t.Errorf("%d runs, want %d", n, accepted)
	}
	e.noLeaks(t, responses...)
}

// TestWebhookRefusedBeforeParsing: a request that does not authenticate is refused for that,
// whatever its body, so an unauthenticated sender learns nothing from the parser.
func TestWebhookRefusedBeforeParsing(t *testing.T) {
	e := newHookEnv(t, authFlows, hookSecrets)
	res := e.do(t, http.MethodPost, "/webhook/signed", "application/json", strings.NewReader(`{"a":`))
	e.check(t, res, http.StatusUnauthorized, "no X-Flowd-Signature header")
	if strings.Contains(string(res.body), `{"a":`) {
		t.Errorf("the body was echoed: %s", res.body)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	res = e.do(t, http.MethodPost, "/webhook/signed", "application/json", strings.NewReader(`{"a":`),
		"X-Flowd-Signature", sign(hookKey, now, `{"a":`), "X-Flowd-Timestamp", now)
	e.check(t, res, http.StatusBadRequest, "malformed JSON body")
}

func TestWebhookSecretNotSet(t *testing.T) {
	tests := []struct {
		name    string
		secrets engine.Secrets
		target  string
		secret  string
	}{
		{"unknown name", hookSecrets, "/webhook/unset", "NOT_SET"},
		{"empty value", hookSecrets, "/webhook/empty", "EMPTY"},
		{"no secrets at all", nil, "/webhook/bearer", "HOOK_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHookEnv(t, authFlows, tt.secrets)
			res := e.do(t, http.MethodPost, tt.target, "", nil, "Authorization", "Bearer "+hookToken)
			e.check(t, res, http.StatusInternalServerError, fmt.Sprintf("webhook secret %q is not set; flowd cannot check this webhook's requests", tt.secret))
			if n := e.runCount(t); n != 0 {
				t.Errorf("%d runs", n)
			}
			// The first request to see the flow set warned about every such webhook.
			logs := e.logs.String()
			if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, fmt.Sprintf(`secret \"%s\" is not set, so every request to it gets 500`, tt.secret)) {
				t.Errorf("no warning about %s in the log:\n%s", tt.secret, logs)
			}
		})
	}
}

func TestCheckWebhookSecrets(t *testing.T) {
	set := newSet(t, authFlows)
	var got []string
	for _, err := range CheckWebhookSecrets(set, hookSecrets) {
		got = append(got, err.Error())
	}
	want := []string{
		`flows/empty.json: node "Hook" (/webhook/empty): secret "EMPTY" is not set, so every request to it gets 500`,
		`flows/unset.json: node "Hook" (/webhook/unset): secret "NOT_SET" is not set, so every request to it gets 500`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(CheckWebhookSecrets(set, nil)); n != 7 {
		t.Errorf("without secrets: %d problems, want one per authenticated webhook (7)", n)
	}
}

func TestWebhookAuthFailureLogAndMetrics(t *testing.T) {
	e := newHookEnv(t, authFlows, hookSecrets)
	old := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	for _, req := range []struct {
		target string
		header []string
	}{
		{"/webhook/bearer", nil},
		{"/webhook/bearer", []string{"Authorization", "Bearer " + wrongCred}},
		{"/webhook/apikey", []string{"X-Api-Key", wrongCred}},
		{"/webhook/signed", []string{"X-Flowd-Signature", sign(hookKey, old, ""), "X-Flowd-Timestamp", old}},
	} {
		if res := e.do(t, http.MethodPost, req.target, "", nil, req.header...); res.status < 400 {
			t.Fatalf("%s accepted: %d", req.target, res.status)
		}
	}
	logs := e.logs.String()
	for _, want := range []string{
		`level=WARN msg="webhook request refused" flow=bearer node=Hook remote=127.0.0.1:`,
		`reason="no Authorization header"`,
		`reason="wrong token in the Authorization header"`,
		`flow=apikey node=Hook`,
		`flow=signed node=Hook remote=127.0.0.1:`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	metrics := e.get(t, "/metrics")
	for _, want := range []string{
		"# TYPE flowd_webhook_auth_failures_total counter",
		`flowd_webhook_auth_failures_total{flow="bearer",node="Hook",reason="missing"} 1`,
		`flowd_webhook_auth_failures_total{flow="bearer",node="Hook",reason="invalid"} 1`,
		`flowd_webhook_auth_failures_total{flow="apikey",node="Hook",reason="invalid"} 1`,
		`flowd_webhook_auth_failures_total{flow="signed",node="Hook",reason="expired"} 1`,
		`flowd_webhook_requests_total{status="401"} 1`,
		`flowd_webhook_requests_total{status="403"} 3`,
	} {
		if !strings.Contains(string(metrics.body), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics.body)
		}
	}
	e.noLeaks(t)
}

// retryAfter returns the response's Retry-After in seconds, failing unless it is a positive
// whole number.
func retryAfter(t *testing.T, res *response) int {
	t.Helper()
	n, err := strconv.Atoi(res.header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q", res.header.Get("Retry-After"))
	}
	return n
}

func TestWebhookRateLimit(t *testing.T) {
	e := newHookEnv(t, authFlows, hookSecrets)
	for i := range 3 {
		e.check(t, e.get(t, "/webhook/limited"), http.StatusOK, "")
		if i == 0 && e.do(t, http.MethodPost, "/webhook/bearer", "", nil).status != http.StatusUnauthorized {
			t.Fatal("other webhooks are not limited") // and have buckets of their own
		}
	}
	res := e.get(t, "/webhook/limited")
	e.check(t, res, http.StatusTooManyRequests, "webhook /webhook/limited is limited to 3/1h requests; try again in")
	// A token comes back every 20 minutes; three were taken just now.
	if n := retryAfter(t, res); n > 1200 || n < 1100 {
		t.Errorf("Retry-After %d, want about 1200", n)
	}
	if !strings.HasSuffix(strings.TrimSpace(fmt.Sprint(res.json(t)["error"])), fmt.Sprintf("try again in %ss", res.header.Get("Retry-After"))) {
		t.Errorf("error %s does not say when to retry", res.body)
	}

	// A reload that keeps the webhook and its limit keeps its bucket.
	e.flows.set.Store(newSet(t, authFlows))
	e.check(t, e.get(t, "/webhook/limited"), http.StatusTooManyRequests, "limited to 3/1h")
	if n := e.runCount(t); n != 3 {
		t.Fatalf("%d runs, want 3: refused requests started runs", n)
	}

	// A changed limit starts with a full bucket, and the old bucket is dropped.
	changed := map[string]string{"limited.json": guardedFlow(`{"path": "limited", "rateLimit": "4/h"}`)}
	e.flows.set.Store(newSet(t, changed))
	for range 4 {
		e.check(t, e.get(t, "/webhook/limited"), http.StatusOK, "")
	}
	e.check(t, e.get(t, "/webhook/limited"), http.StatusTooManyRequests, "limited to 4/1h")
	limits := e.server.hooks.limits
	limits.mu.Lock()
	buckets := len(limits.buckets)
	limits.mu.Unlock()
	if buckets != 1 {
		t.Errorf("%d buckets kept, want 1", buckets)
	}

	metrics := string(e.get(t, "/metrics").body)
	for _, want := range []string{
		"# TYPE flowd_webhook_rate_limited_total counter",
		`flowd_webhook_rate_limited_total{flow="limited",node="Hook"} 3`,
		`flowd_webhook_requests_total{status="429"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

// TestWebhookRateLimitAfterAuth: requests that fail authentication take no tokens, so a
// sender without the secret cannot use up the real sender's budget.
func TestWebhookRateLimitAfterAuth(t *testing.T) {
	e := newHookEnv(t, authFlows, hookSecrets)
	post := func(sig string) *response {
		now := strconv.FormatInt(time.Now().Unix(), 10)
		if sig == "" {
			sig = sign(hookKey, now, "{}")
		}
		return e.do(t, http.MethodPost, "/webhook/signedlimited", "application/json", strings.NewReader("{}"),
			"X-Flowd-Signature", sig, "X-Flowd-Timestamp", now)
	}
	for range 3 {
		e.check(t, post(sign(wrongCred, "1", "{}")), http.StatusForbidden, "the signature does not match")
	}
	e.check(t, post(""), http.StatusOK, "")
	res := post("")
	e.check(t, res, http.StatusTooManyRequests, "limited to 1/1h")
	retryAfter(t, res)
	if n := e.runCount(t); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
}

// TestWebhookRateLimitConcurrent: a burst from many clients at once lets exactly the bucket's
// size through.
func TestWebhookRateLimitConcurrent(t *testing.T) {
	e := newHookEnv(t, authFlows, hookSecrets)
	const clients = 12
	statuses := make(chan int, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/webhook/limited", nil)
			if err != nil {
				statuses <- 0
				return
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses <- res.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusOK] != 3 || counts[http.StatusTooManyRequests] != clients-3 {
		t.Fatalf("statuses %v, want 3 × 200 and %d × 429", counts, clients-3)
	}
	if e.runCount(t) != 3 {
		t.Fatalf("%d runs, want 3", e.runCount(t))
	}
}

// TestWebhookHMACShellExample runs the sender's shell example from docs/flow-format.md
// (openssl and curl) against a server, so the documented scheme is the one flowd checks.
func TestWebhookHMACShellExample(t *testing.T) {
	for _, tool := range []string{"sh", "openssl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "flow-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	var script string
	for _, block := range strings.Split(string(doc), "```sh\n")[1:] {
		if code, _, _ := strings.Cut(block, "```"); strings.Contains(code, "openssl dgst") {
			script = code
		}
	}
	if script == "" {
		t.Fatal("docs/flow-format.md has no sh example that signs with openssl")
	}
	e := newHookEnv(t, map[string]string{
		"deploys.json": guardedFlow(`{"path": "deploys", "httpMethod": "POST", "authentication": "hmac", "secret": "DEPLOY_HOOK_KEY"}`),
	}, mapSecrets{"DEPLOY_HOOK_KEY": hookKey})
	script = strings.ReplaceAll(script, "http://127.0.0.1:5678", e.url)
	cmd := exec.CommandContext(t.Context(), "sh", "-c", script)
	cmd.Env = append(os.Environ(), "DEPLOY_HOOK_KEY="+hookKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	res := &response{status: http.StatusOK, body: out}
	id, _ := res.json(t)["runId"].(string)
	if id == "" {
		t.Fatalf("the example was not accepted: %s", out)
	}
	run := e.store.waitRun(t, id)
	if body := run.Nodes[0].Input[0]["body"].(map[string]any); body["event"] != "deploy" {
		t.Errorf("run body %v", body)
	}
}

// BenchmarkVerify measures what authentication adds to a request: a token compare, and an
// HMAC over bodies of 1 KiB and of the default 1 MiB limit.
func BenchmarkVerify(b *testing.B) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	header := &nodes.WebhookAuth{Type: nodes.AuthHeader, Header: "Authorization"}
	signed := &nodes.WebhookAuth{Type: nodes.AuthHMAC, SignatureHeader: "X-Flowd-Signature", TimestampHeader: "X-Flowd-Timestamp", Tolerance: 5 * time.Minute}
	b.Run("headerAuth", func(b *testing.B) {
		r := httptest.NewRequest(http.MethodPost, "/webhook/x", nil)
		r.Header.Set("Authorization", "Bearer "+hookToken)
		for b.Loop() {
			if f := verify(r, header, hookToken, nil, time.Now()); f != nil {
				b.Fatal(f.msg)
			}
		}
	})
	for _, size := range []int{1 << 10, DefaultMaxBodyBytes} {
		body := strings.Repeat("x", size)
		data := []byte(body)
		r := httptest.NewRequest(http.MethodPost, "/webhook/x", nil)
		r.Header.Set("X-Flowd-Signature", sign(hookKey, ts, body))
		r.Header.Set("X-Flowd-Timestamp", ts)
		b.Run(fmt.Sprintf("hmac/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if f := verify(r, signed, hookKey, data, time.Now()); f != nil {
					b.Fatal(f.msg)
				}
			}
		})
	}
}
