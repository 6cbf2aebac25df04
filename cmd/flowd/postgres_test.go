package main

import (
	"context"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage/postgres/pgtest"
)

var instanceRE = regexp.MustCompile(`msg=listening .* instance=(\S+)`)

// flowd serve --db postgres://… serves the token flow on PostgreSQL: runs are recorded there,
// stamped with the instance that ran them, and static data lives there, so a second server
// on the same database sees both.
func TestServePostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ts := newTokenServer(t, 3600)
	env := []string{"TOKEN_URL=" + ts.URL}
	flows := flowsDir(t, nil)

	s := startServe(t, flows, dsn, env)
	var out map[string]any
	for range 2 {
		if code := s.call("POST", "/webhook/token-refresh", "", "", &out); code != 200 || out["accessToken"] != "tok-1" {
			t.Fatalf("webhook: %d %v", code, out)
		}
	}
	if ts.hits.Load() != 1 {
		t.Fatalf("%d token requests, want 1 (the second run reads the stored token)", ts.hits.Load())
	}
	m := instanceRE.FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no instance id in the listening line:\n%s", s.log.String())
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}

	conn := pgtest.Connect(t, dsn)
	var n int
	if err := conn.QueryRow(context.Background(),
		`SELECT count(*) FROM runs WHERE status = 'success' AND instance_id = $1`, m[1]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d successful runs stamped with instance %s in PostgreSQL, want 2", n, m[1])
	}

	again := startServe(t, flows, dsn, env)
	var page struct{ Runs []engine.Run }
	if code := again.call("GET", "/api/runs?flow=token-refresh", "", "", &page); code != 200 || len(page.Runs) != 2 {
		t.Fatalf("second server lists %d runs (%d), want the first server's 2", len(page.Runs), code)
	}
	if code := again.call("POST", "/webhook/token-refresh", "", "", &out); code != 200 || out["accessToken"] != "tok-1" || ts.hits.Load() != 1 {
		t.Fatalf("second server's run: %d %v after %d token requests; want the stored token", code, out, ts.hits.Load())
	}
	if code := again.call("GET", "/healthz", "", "", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

// flowd backup copies SQLite files only; given a PostgreSQL database (here through FLOWD_DB)
// it says what to use instead and copies nothing.
func TestBackupRefusesPostgres(t *testing.T) {
	dst := t.TempDir() + "/copy.db"
	r := flowd(t, []string{"FLOWD_DB=postgres://flowd:secret@db.example/flowd"}, "backup", dst)
	if r.code != exitUsage || !strings.Contains(r.stderr, "pg_dump") || strings.Contains(r.stderr, "secret") {
		t.Fatalf("backup of a postgres DSN: exit %d, stderr %q; want a usage error pointing to pg_dump, without the password", r.code, r.stderr)
	}
}
