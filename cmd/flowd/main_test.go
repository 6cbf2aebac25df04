package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/redact"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/postgres/pgtest"
)

// flowdBin is the flowd binary built once for the end-to-end tests.
var flowdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	flowdBin = filepath.Join(dir, "flowd")
	build := exec.Command("go", "build", "-o", flowdBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build flowd:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m) // stops the PostgreSQL server the tests started, if any
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one invocation of the binary did.
type result struct {
	code           int
	stdout, stderr string
	run            engine.Run // decoded from stdout when it holds a run record
}

// testSecrets are the client credentials of every flowd a test starts, as the token flow
// names them; a test's own env comes after them and may override them ("NAME=" unsets).
var testSecrets = []string{"FLOWD_SECRET_CLIENT_ID=app", "FLOWD_SECRET_CLIENT_SECRET=s3cret"}

// commandEnv is the environment of a flowd a test starts: the test's, testSecrets, env.
func commandEnv(env []string) []string {
	return append(append(os.Environ(), testSecrets...), env...)
}

func flowd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, flowdBin, args...)
	cmd.Env = commandEnv(env)
	cmd.Dir = repoRoot(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("flowd %v: %v", args, err)
	}
	if strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
		if err := json.Unmarshal(stdout.Bytes(), &r.run); err != nil {
			t.Fatalf("decode run record: %v\n%s", err, r.stdout)
		}
	}
	return r
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// tokenServer is an OAuth2 token endpoint whose behaviour a test switches.
type tokenServer struct {
	*httptest.Server
	hits      atomic.Int64
	mu        sync.Mutex
	mode      string // "ok", "500", "badjson"
	expiresIn int
	issued    []string
	lastForm  string
	lastAuth  string
}

func newTokenServer(t *testing.T, expiresIn int) *tokenServer {
	ts := &tokenServer{mode: "ok", expiresIn: expiresIn}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.hits.Add(1)
		_ = r.ParseForm()
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.lastForm = r.PostForm.Encode()
		ts.lastAuth = r.Header.Get("Authorization")
		switch ts.mode {
		case "500":
			http.Error(w, "token service unavailable", http.StatusInternalServerError)
		case "badjson":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token": "x"`)
		default:
			tok := fmt.Sprintf("tok-%d", n)
			ts.issued = append(ts.issued, tok)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token": %q, "token_type": "Bearer", "expires_in": %d}`, tok, ts.expiresIn)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) setMode(m string) {
	ts.mu.Lock()
	ts.mode = m
	ts.mu.Unlock()
}

func finalItem(t *testing.T, r result) engine.Item {
	t.Helper()
	nodes := r.run.Nodes
	if len(nodes) == 0 || nodes[len(nodes)-1].Node != "continue with valid token" {
		t.Fatalf("run did not reach the end: %s\n%s", r.stdout, r.stderr)
	}
	return nodes[len(nodes)-1].Output[0][0]
}

func storedToken(t *testing.T, db string) any {
	t.Helper()
	s, err := storage.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Static(context.Background(), "token-refresh")
	if err != nil {
		t.Fatal(err)
	}
	return st["accessToken"]
}

func ranNode(r result, name string) bool {
	for _, n := range r.run.Nodes {
		if n.Node == name {
			return true
		}
	}
	return false
}

func TestTokenFlowRefreshesOnlyWhenStale(t *testing.T) {
	ts := newTokenServer(t, 3600)
	db := filepath.Join(t.TempDir(), "flowd.db")
	env := []string{"TOKEN_URL=" + ts.URL + "/token", "FLOWD_SECRET_CLIENT_ID=app", "FLOWD_SECRET_CLIENT_SECRET=s3cret"}

	first := flowd(t, env, "run", "flows/token-refresh.json", "--db", db)
	if first.code != 0 || first.run.Status != engine.StatusSuccess {
		t.Fatalf("first run: exit %d\n%s\n%s", first.code, first.stdout, first.stderr)
	}
	// The printed record is redacted; static data holds the token.
	if ts.hits.Load() != 1 || finalItem(t, first)["accessToken"] != redact.Mask || storedToken(t, db) != "tok-1" {
		t.Fatalf("first run: %d hits, item %v, stored %v", ts.hits.Load(), finalItem(t, first), storedToken(t, db))
	}
	// RFC 6749 §4.4: form body and HTTP basic client authentication.
	if ts.lastForm != "grant_type=client_credentials" || ts.lastAuth != "Basic YXBwOnMzY3JldA==" {
		t.Errorf("token request form %q auth %q", ts.lastForm, ts.lastAuth)
	}

	// A new process within the lifetime reuses the stored token: no request at all.
	second := flowd(t, env, "run", "flows/token-refresh.json", "--db", db)
	if second.code != 0 || ts.hits.Load() != 1 {
		t.Fatalf("second run: exit %d, %d hits\n%s", second.code, ts.hits.Load(), second.stderr)
	}
	if got := storedToken(t, db); got != "tok-1" || ranNode(second, "get new accessToken") {
		t.Fatalf("second run left %v, refreshed %v", got, ranNode(second, "get new accessToken"))
	}
	if second.run.Mode != "manual" || second.run.Trigger != "Webhook" || len(second.run.FlowVersion) != 12 {
		t.Errorf("run record %+v", second.run)
	}
}

// waitUntilPast waits for the wall clock to pass an ISO time the flow printed.
func waitUntilPast(t *testing.T, iso any) {
	t.Helper()
	at, err := engine.ParseDateTime(iso, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(at); d > 0 {
		if d > 5*time.Second {
			t.Fatalf("refresh time %v is too far ahead", at)
		}
		time.Sleep(d + 10*time.Millisecond) // waiting for time itself to pass: nothing to poll
	}
}

func TestTokenFlowRefreshesAfterExpiry(t *testing.T) {
	ts := newTokenServer(t, 1) // a one-second token: refreshed after 0.9 s
	db := filepath.Join(t.TempDir(), "flowd.db")
	env := []string{"TOKEN_URL=" + ts.URL}

	first := flowd(t, env, "run", "flows/token-refresh.json", "--db", db)
	item := finalItem(t, first)
	waitUntilPast(t, item["refreshAt"])
	second := flowd(t, env, "run", "flows/token-refresh.json", "--db", db)
	if second.code != 0 || ts.hits.Load() != 2 {
		t.Fatalf("exit %d, %d hits\n%s", second.code, ts.hits.Load(), second.stderr)
	}
	if !ranNode(second, "get new accessToken") || storedToken(t, db) != "tok-2" {
		t.Fatalf("stored token = %v", storedToken(t, db))
	}
}

func TestTokenFlowFailuresKeepTheOldToken(t *testing.T) {
	tests := []struct {
		name      string
		breakIt   func(ts *tokenServer)
		wantError string
	}{
		{"endpoint down", func(ts *tokenServer) { ts.Close() }, "connection refused"},
		{"HTTP 500", func(ts *tokenServer) { ts.setMode("500") }, "HTTP 500"},
		{"invalid JSON", func(ts *tokenServer) { ts.setMode("badjson") }, "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, 1)
			db := filepath.Join(t.TempDir(), "flowd.db")
			env := []string{"TOKEN_URL=" + ts.URL}
			first := flowd(t, env, "run", "flows/token-refresh.json", "--db", db)
			waitUntilPast(t, finalItem(t, first)["refreshAt"])

			tt.breakIt(ts)
			failed := flowd(t, env, "run", "flows/token-refresh.json", "--db", db)
			if failed.code != 1 || failed.run.Status != engine.StatusError {
				t.Fatalf("exit %d status %s\n%s", failed.code, failed.run.Status, failed.stderr)
			}
			if failed.run.ErrorNode != "get new accessToken" || !strings.Contains(failed.run.Error, tt.wantError) {
				t.Errorf("error at %q: %s", failed.run.ErrorNode, failed.run.Error)
			}
			if !strings.Contains(failed.stderr, tt.wantError) {
				t.Errorf("stderr does not say why:\n%s", failed.stderr)
			}
			if got := storedToken(t, db); got != "tok-1" {
				t.Fatalf("stored token = %v, want the old tok-1", got)
			}
		})
	}
}

func TestRunWithoutTokenURLSaysSo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "flowd.db")
	r := flowd(t, []string{"TOKEN_URL="}, "run", "flows/token-refresh.json", "--db", db)
	if r.code != 1 || !strings.Contains(r.run.Error, "TOKEN_URL is not set") {
		t.Fatalf("exit %d error %q", r.code, r.run.Error)
	}
}

func TestRunDemoTokenEndpoint(t *testing.T) {
	// No client credentials configured: --demo gives the demo endpoint's to $secrets.
	noSecrets := []string{"TOKEN_URL=", "FLOWD_SECRET_CLIENT_ID=", "FLOWD_SECRET_CLIENT_SECRET="}
	db := filepath.Join(t.TempDir(), "flowd.db")
	r := flowd(t, noSecrets, "run", "flows/token-refresh.json", "--db", db, "--demo")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	tok, _ := storedToken(t, db).(string)
	if !strings.HasPrefix(tok, "demo-") || finalItem(t, r)["accessToken"] != redact.Mask {
		t.Fatalf("stored token %q, printed %v", tok, finalItem(t, r)["accessToken"])
	}
	// The demo endpoint checks the credentials it was given; configured ones win over the
	// demo ones, and the flow sends those.
	r = flowd(t, []string{"TOKEN_URL="}, "run", "flows/token-refresh.json", "--db", filepath.Join(t.TempDir(), "flowd.db"), "--demo")
	if r.code != 0 {
		t.Fatalf("with configured credentials: exit %d\n%s", r.code, r.stderr)
	}
	// Without --demo and without secrets, the token flow does not load.
	r = flowd(t, noSecrets, "run", "flows/token-refresh.json", "--db", db)
	if r.code != 1 || !strings.Contains(r.stderr, "parameters.auth.user: $secrets.CLIENT_ID: no such secret; set FLOWD_SECRET_CLIENT_ID") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
}

func TestRunCommandLine(t *testing.T) {
	dir := t.TempDir()
	echo := filepath.Join(dir, "echo.json")
	if err := os.WriteFile(echo, []byte(`{"nodes": [
		{"name": "in", "type": "webhook", "parameters": {"path": "echo"}},
		{"name": "sched", "type": "scheduleTrigger", "parameters": {"interval": "1m"}},
		{"name": "out", "type": "code", "parameters": {"return": {"got": "{{ $json.msg ?? 'none' }}", "n": "{{ len($input) }}"}}}
	], "connections": {"in": ["out"], "sched": ["out"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "flowd.db")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // in stdout (the run record) or stderr
	}{
		{"n8n item input", []string{"run", echo, "--db", db, "--input", `{"json": {"msg": "hi"}}`}, 0, `"got": "hi"`},
		{"plain object input", []string{"run", echo, "--db", db, "--input", `{"msg": "yo"}`}, 0, `"got": "yo"`},
		{"list input", []string{"run", echo, "--db", db, "--input", `[{"msg": 1}, {"msg": 2}]`}, 0, `"n": 2`},
		{"flags before file", []string{"run", "--db", db, "--trigger", "sched", echo}, 0, `"trigger": "sched"`},
		{"bad input", []string{"run", echo, "--db", db, "--input", `{"msg"`}, 2, "--input: invalid JSON"},
		{"unknown trigger", []string{"run", echo, "--db", db, "--trigger", "out"}, 2, `"out" is not a trigger node`},
		{"missing file", []string{"run", filepath.Join(dir, "nope.json"), "--db", db}, 1, "nope.json: read:"},
		{"no file", []string{"run"}, 2, "Usage: flowd run"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"version", []string{"version"}, 0, "flowd "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := flowd(t, nil, tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout+r.stderr, tt.wantOut) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s\n%s", r.code, tt.wantCode, tt.wantOut, r.stdout, r.stderr)
			}
		})
	}
}
