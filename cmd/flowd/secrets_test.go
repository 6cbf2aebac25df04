package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// leakyFlow does what it can to get the client secret into its run records and the log: it
// returns it, sends it to an echo server under a sensitive header and fails with it.
const leakyFlow = `{"id": "leaky", "nodes": [
	{"name": "hook", "type": "webhook", "parameters": {"path": "leaky", "httpMethod": "POST", "responseMode": "lastNode"}},
	{"name": "show", "type": "code", "parameters": {"return": {"note": "the secret is {{ $secrets.CLIENT_SECRET }}", "sent": "{{ $json.body.x ?? '' }}"}}},
	{"name": "echo", "type": "httpRequest", "parameters": {"url": "{{ $env.ECHO_URL }}", "headers": {"X-Client-Secret": "{{ $secrets.CLIENT_SECRET }}"}}},
	{"name": "fail", "type": "code", "parameters": {"code": ["fail('rejected ' + $secrets.CLIENT_SECRET)"]}}
], "connections": {"hook": ["show"], "show": ["echo"], "echo": ["fail"]}}`

// TestSecretsReachNoDatabaseFileNorLog runs the token flow and a flow that tries to leak the
// client secret, with the secrets in a 0600 file, and reads back everything flowd wrote:
// the client secret is in no byte of the database, its WAL or shared memory, during the
// runs or after shutdown, nor in the log; the access token is in no stored run and not in
// the log. The webhook caller still gets the token, and static data still holds it.
func TestSecretsReachNoDatabaseFileNorLog(t *testing.T) {
	const clientSecret = "e2e-client-s3cret-7f3a9c41"
	basic := base64.StdEncoding.EncodeToString([]byte("e2e-app:" + clientSecret))

	ts := newTokenServer(t, 3600)
	echo := newTokenServer(t, 3600) // answers any request with a token, recording it
	dir := flowsDir(t, map[string]string{"leaky.json": leakyFlow})
	secretsFile := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(secretsFile, []byte("# the partner's client\nCLIENT_ID=e2e-app\nCLIENT_SECRET="+clientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "flowd.db")
	env := []string{
		"TOKEN_URL=" + ts.URL, "ECHO_URL=" + echo.URL, "FLOWD_LOG_LEVEL=debug",
		"FLOWD_SECRET_CLIENT_ID=", "FLOWD_SECRET_CLIENT_SECRET=", // from the file only
	}
	s := startServe(t, dir, db, env, "--secrets-file", secretsFile)

	var got map[string]any
	if code := s.call("POST", "/webhook/token-refresh", "", "", &got); code != 200 || got["accessToken"] != "tok-1" {
		t.Fatalf("token webhook: %d %v", code, got)
	}
	ts.mu.Lock()
	sentAuth := ts.lastAuth
	ts.mu.Unlock()
	if sentAuth != "Basic "+basic {
		t.Fatalf("the token request carried %q, not the client credentials from the secrets file", sentAuth)
	}
	var failed map[string]any
	if code := s.call("POST", "/webhook/leaky", "application/json", `{"x": "`+clientSecret+`"}`, &failed); code != 500 {
		t.Fatalf("leaky webhook: %d %v", code, failed)
	}
	if msg, _ := failed["error"].(string); !strings.Contains(msg, "rejected [$secrets.CLIENT_SECRET]") {
		t.Errorf("the failed run's answer: %v", failed)
	}
	if n := echo.hits.Load(); n != 1 {
		t.Fatalf("the echo server saw %d requests", n)
	}

	// A manual run through the API answers with the run record: redacted, like the stored one.
	var manual json.RawMessage
	if code := s.call("POST", "/api/flows/token-refresh/run", "application/json", `{}`, &manual); code != 200 ||
		!strings.Contains(string(manual), `"status":"success"`) || strings.Contains(string(manual), "tok-1") {
		t.Errorf("manual run through the API: %d %s", code, manual)
	}

	leaks := map[string]string{"client secret": clientSecret, "basic credentials": basic}
	checkFiles := func(when string) {
		t.Helper()
		files, err := filepath.Glob(db + "*")
		if err != nil || len(files) == 0 {
			t.Fatalf("database files: %v %v", files, err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for what, leak := range leaks {
				if bytes.Contains(data, []byte(leak)) {
					t.Errorf("%s: %s holds the %s", when, filepath.Base(f), what)
				}
			}
		}
	}
	checkFiles("while serving")

	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkFiles("after shutdown")
	log := s.log.String()
	for what, leak := range map[string]string{"client secret": clientSecret, "basic credentials": basic, "access token": "tok-1"} {
		if strings.Contains(log, leak) {
			t.Errorf("the log holds the %s:\n%s", what, log)
		}
	}
	if !strings.Contains(log, "rejected [$secrets.CLIENT_SECRET]") {
		t.Errorf("the log does not say why the leaky run failed:\n%s", log)
	}

	// Every stored run, read as the API reads it.
	store, err := storage.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	runs, err := store.ListRuns(context.Background(), engine.RunFilter{Limit: 1000})
	if err != nil || len(runs) < 2 {
		t.Fatalf("%d runs: %v", len(runs), err)
	}
	for _, r := range runs {
		full, err := store.GetRun(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(full)
		if err != nil {
			t.Fatal(err)
		}
		for what, leak := range map[string]string{"client secret": clientSecret, "access token": "tok-1"} {
			if strings.Contains(string(data), leak) {
				t.Errorf("run %s of %s holds the %s:\n%s", r.ID, r.FlowID, what, data)
			}
		}
	}
	st, err := store.Static(context.Background(), "token-refresh")
	if err != nil || st["accessToken"] != "tok-1" {
		t.Fatalf("static data: %v %v", st, err)
	}
}

func TestServeRefusesAnOpenSecretsFile(t *testing.T) {
	secretsFile := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(secretsFile, []byte("CLIENT_SECRET=x-y-z-w\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secretsFile, 0o644); err != nil {
		t.Fatal(err)
	}
	r := flowd(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "f.db"),
		"--flows", flowsDir(t, nil), "--secrets-file", secretsFile)
	if r.code != exitProblem || !strings.Contains(r.stderr, "mode 0644 lets other users read or change it; it must be for its owner only (chmod 600") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	r = flowd(t, []string{"FLOWD_REDACT_KEYS=iban,id"}, "run", "flows/token-refresh.json", "--db", filepath.Join(t.TempDir(), "f.db"))
	if r.code != exitUsage || !strings.Contains(r.stderr, `--redact-keys: redact key pattern "id": want at least 3 letters or digits`) {
		t.Fatalf("bad pattern: exit %d:\n%s", r.code, r.stderr)
	}
}

// TestRunMasksAddedKeys checks --redact-keys on what flowd run prints, and the warning about
// a secret too short to redact by value.
func TestRunMasksAddedKeys(t *testing.T) {
	dir := t.TempDir()
	flow := filepath.Join(dir, "iban.json")
	if err := os.WriteFile(flow, []byte(`{"nodes": [{"name": "in", "type": "webhook", "parameters": {"path": "iban"}},
		{"name": "out", "type": "code", "parameters": {"return": {"payeeIban": "DE89370400440532013000", "amount": 12}}}],
		"connections": {"in": ["out"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := flowd(t, []string{"FLOWD_SECRET_PIN=123"}, "run", flow, "--db", filepath.Join(dir, "f.db"), "--redact-keys", "iban")
	if r.code != 0 || strings.Contains(r.stdout, "DE89") || !strings.Contains(r.stdout, `"amount": 12`) {
		t.Fatalf("exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, `msg="secret is too short to be redacted by value in run records and logs" name=PIN minLength=4`) {
		t.Errorf("no warning about the short secret:\n%s", r.stderr)
	}
}
