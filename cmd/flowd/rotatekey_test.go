package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// countFlow writes static data on every call, so a rotation has commits to race with.
const countFlow = `{"id": "count", "nodes": [
	{"name": "hook", "type": "webhook", "parameters": {"path": "count", "httpMethod": "POST", "responseMode": "lastNode"}},
	{"name": "count", "type": "code", "parameters": {
		"code": ["$static.calls = ($static.calls ?? 0) + 1"],
		"return": {"calls": "{{ $static.calls }}"}}}
], "connections": {"hook": ["count"]}}`

// testKey returns a fresh key as FLOWD_ENCRYPTION_KEY takes it, and its id.
func testKey(t *testing.T) (env, id string) {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k), storage.KeyID(k)
}

// rawStaticValues reads the static_data table's value column straight from the file, as
// someone holding a copy of it would: flow id + key → stored text.
func rawStaticValues(t *testing.T, db string) map[string]string {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT flow_id, key, value FROM static_data WHERE value IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var flow, key, value string
		if err := rows.Scan(&flow, &key, &value); err != nil {
			t.Fatal(err)
		}
		out[flow+"."+key] = value
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// requireSealed checks that every static value in the file is sealed with the key id and
// that none holds any of the secrets.
func requireSealed(t *testing.T, db, keyID string, secrets ...string) {
	t.Helper()
	raw := rawStaticValues(t, db)
	if len(raw) == 0 {
		t.Fatal("no static data stored")
	}
	for k, v := range raw {
		if !strings.HasPrefix(v, `"flowd:enc:v1:`+keyID+`:`) {
			t.Errorf("%s is stored as %.50q, want it sealed with key %s", k, v, keyID)
		}
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Errorf("%s holds %q in the file: %s", k, s, v)
			}
		}
	}
}

func callToken(t *testing.T, s *server) string {
	t.Helper()
	var out map[string]any
	if code := s.call("POST", "/webhook/token-refresh", "", "", &out); code != 200 {
		t.Fatalf("token flow: %d %v", code, out)
	}
	tok, _ := out["accessToken"].(string)
	return tok
}

// TestEncryptionLifecycle goes through what an operator does: turn encryption on, restart,
// start with a wrong key, rotate to a new key while serving, drop the old key, turn it off.
func TestEncryptionLifecycle(t *testing.T) {
	ts := newTokenServer(t, 3600)
	dir := flowsDir(t, map[string]string{"count.json": countFlow})
	db := filepath.Join(t.TempDir(), "flowd.db")
	keyA, idA := testKey(t)
	keyB, idB := testKey(t)
	base := []string{"TOKEN_URL=" + ts.URL, "FLOWD_ENCRYPTION_KEY_OLD="}
	withKeys := func(current, old string) []string {
		return append(base[:1:1], "FLOWD_ENCRYPTION_KEY="+current, "FLOWD_ENCRYPTION_KEY_OLD="+old)
	}

	// Key A: the token is issued, stored sealed, and nowhere in plain text in static_data.
	s := startServe(t, dir, db, withKeys(keyA, ""))
	if tok := callToken(t, s); tok != "tok-1" {
		t.Fatalf("token %q, want tok-1", tok)
	}
	if !strings.Contains(s.log.String(), "static data is encrypted at rest") || !strings.Contains(s.log.String(), "key="+idA) {
		t.Errorf("serve does not log that static data is encrypted:\n%s", s.log.String())
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	requireSealed(t, db, idA, "tok-1")

	// Same key after a restart: the sealed token opens and is reused.
	s = startServe(t, dir, db, withKeys(keyA, ""))
	if tok := callToken(t, s); tok != "tok-1" || ts.hits.Load() != 1 {
		t.Fatalf("after restart: token %q, %d token requests (want tok-1 reused)", tok, ts.hits.Load())
	}
	s.stop(syscall.SIGTERM)

	// A wrong key, or none: serve refuses to start, saying which key it needs; flowd run
	// fails the run with the same reason rather than read ciphertext as a token.
	for name, env := range map[string][]string{"wrong key": withKeys(keyB, ""), "no key": withKeys("", "")} {
		r := flowd(t, env, "serve", "--addr", "127.0.0.1:0", "--db", db, "--flows", dir)
		if r.code != exitProblem {
			t.Fatalf("%s: serve exit %d, want %d\n%s", name, r.code, exitProblem, r.stderr)
		}
		for _, want := range []string{`flow \"token-refresh\"`, "key id " + idA, "FLOWD_ENCRYPTION_KEY_OLD"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: serve does not say %s:\n%s", name, want, r.stderr)
			}
		}
		run := flowd(t, env, "run", filepath.Join(dir, "token-refresh.json"), "--db", db)
		if run.code != exitFailed || run.run.Status != engine.StatusError || !strings.Contains(run.run.Error, "key id "+idA) {
			t.Errorf("%s: run exit %d status %s error %q", name, run.code, run.run.Status, run.run.Error)
		}
		for _, out := range []string{r.stderr, run.stderr, run.stdout} {
			if strings.Contains(out, keyA) || strings.Contains(out, keyB) {
				t.Errorf("%s: a key appears in the output", name)
			}
		}
	}
	if ts.hits.Load() != 1 {
		t.Fatalf("%d token requests: a run with the wrong key fetched a token", ts.hits.Load())
	}

	// Rotation: serve with B, A still readable; rotate while webhook calls write static data.
	s = startServe(t, dir, db, withKeys(keyB, keyA))
	if !strings.Contains(s.log.String(), "run flowd rotate-key") {
		t.Errorf("serve does not point at rotate-key while values are sealed with an old key:\n%s", s.log.String())
	}
	// Callers keep calling until the rotation has finished, so their commits straddle it.
	const callers = 4
	var (
		wg      sync.WaitGroup
		calls   atomic.Int64
		rotated = make(chan struct{})
	)
	for range callers {
		wg.Go(func() {
			for {
				select {
				case <-rotated:
					return
				default:
				}
				if code := s.call("POST", "/webhook/count", "", "", nil); code != 200 {
					t.Errorf("count flow: %d", code)
					return
				}
				calls.Add(1)
			}
		})
	}
	eventually(t, "webhook calls before the rotation", func() bool { return calls.Load() >= callers })
	start := calls.Load()
	rot := flowd(t, withKeys(keyB, keyA), "rotate-key", "--db", db)
	during := calls.Load() - start
	close(rotated)
	wg.Wait()
	if rot.code != 0 || !strings.Contains(rot.stdout, "3 re-sealed from old keys") || !strings.Contains(rot.stdout, "sealed with key "+idB) {
		t.Fatalf("rotate-key: exit %d\n%s%s", rot.code, rot.stdout, rot.stderr)
	}
	t.Logf("%d webhook calls wrote static data while rotate-key ran, %d in all", during, calls.Load())
	if tok := callToken(t, s); tok != "tok-1" {
		t.Fatalf("token after rotating: %q", tok)
	}
	s.stop(syscall.SIGTERM)
	requireSealed(t, db, idB, "tok-1")

	// Only B now: everything opens, nothing was lost.
	s = startServe(t, dir, db, withKeys(keyB, ""))
	var count map[string]any
	if code := s.call("POST", "/webhook/count", "", "", &count); code != 200 || count["calls"] != float64(calls.Load()+1) {
		t.Fatalf("count after rotation: %d %v, want %d calls", code, count, calls.Load()+1)
	}
	if tok := callToken(t, s); tok != "tok-1" || ts.hits.Load() != 1 {
		t.Fatalf("with key B only: token %q, %d token requests", tok, ts.hits.Load())
	}
	s.stop(syscall.SIGTERM)

	// Off: decrypt, serve without keys; on again: plain values get sealed.
	dec := flowd(t, withKeys(keyB, ""), "rotate-key", "--db", db, "--decrypt")
	if dec.code != 0 || !strings.Contains(dec.stdout, "4 decrypted") || !strings.Contains(dec.stdout, "in plain text") {
		t.Fatalf("rotate-key --decrypt: exit %d\n%s%s", dec.code, dec.stdout, dec.stderr)
	}
	if raw := rawStaticValues(t, db)["token-refresh.accessToken"]; raw != `"tok-1"` {
		t.Fatalf("decrypted token stored as %q", raw)
	}
	s = startServe(t, dir, db, withKeys("", ""))
	if tok := callToken(t, s); tok != "tok-1" || ts.hits.Load() != 1 {
		t.Fatalf("decrypted: token %q, %d token requests", tok, ts.hits.Load())
	}
	s.stop(syscall.SIGTERM)
	enc := flowd(t, withKeys(keyA, ""), "rotate-key", "--db", db)
	if enc.code != 0 || !strings.Contains(enc.stdout, "4 encrypted") {
		t.Fatalf("rotate-key on plain data: exit %d\n%s%s", enc.code, enc.stdout, enc.stderr)
	}
	requireSealed(t, db, idA, "tok-1")
}

func TestEncryptionKeyErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "flowd.db")
	good, _ := testKey(t)
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     string
	}{
		{"serve, short key", []string{"FLOWD_ENCRYPTION_KEY=c2hvcnQ="}, []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--flows", "flows"},
			exitProblem, "FLOWD_ENCRYPTION_KEY: want 32 random bytes as base64 (openssl rand -base64 32)"},
		{"run, passphrase", []string{"FLOWD_ENCRYPTION_KEY=my secret passphrase"}, []string{"run", "flows/token-refresh.json", "--db", db},
			exitUsage, "FLOWD_ENCRYPTION_KEY: want 32 random bytes"},
		{"rotate-key, bad old key", []string{"FLOWD_ENCRYPTION_KEY=" + good, "FLOWD_ENCRYPTION_KEY_OLD=" + good + ",nope"}, []string{"rotate-key", "--db", db},
			exitUsage, "FLOWD_ENCRYPTION_KEY_OLD, key 2: want 32 random bytes"},
		{"rotate-key without a key", []string{"FLOWD_ENCRYPTION_KEY="}, []string{"rotate-key", "--db", db},
			exitUsage, "FLOWD_ENCRYPTION_KEY is not set"},
		{"rotate-key, no database", []string{"FLOWD_ENCRYPTION_KEY=" + good}, []string{"rotate-key", "--db", filepath.Join(t.TempDir(), "nope.db")},
			exitProblem, "no database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := flowd(t, tt.env, tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s", r.code, tt.wantCode, tt.want, r.stderr)
			}
			if strings.Contains(r.stderr, "passphrase") || strings.Contains(r.stderr, good) {
				t.Errorf("the error quotes a key:\n%s", r.stderr)
			}
		})
	}
}
