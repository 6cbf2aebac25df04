package main

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// runIDAt is a run id in ULID layout for a run started at at, the n-th of that millisecond.
// engine.NewRunID cannot make ids for past times: its ids only ever grow.
func runIDAt(at time.Time, n int) string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var id [26]byte
	for i := range id {
		id[i] = '0'
	}
	for i, ms := 9, uint64(at.UnixMilli()); i >= 0; i, ms = i-1, ms>>5 {
		id[i] = crockford[ms&31]
	}
	for i := 25; n > 0; i, n = i-1, n>>5 {
		id[i] = crockford[n&31]
	}
	return string(id[:])
}

func TestServePrunesRuns(t *testing.T) {
	db := filepath.Join(t.TempDir(), "flowd.db")
	st, err := storage.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	var runs []*engine.Run
	for i, at := range []time.Time{
		time.Now().Add(-30 * 24 * time.Hour), time.Now().Add(-29 * 24 * time.Hour), time.Now().Add(-25 * time.Hour),
		time.Now().Add(-5 * time.Hour), time.Now().Add(-4 * time.Hour), time.Now().Add(-3 * time.Hour),
		time.Now().Add(-2 * time.Hour), time.Now().Add(-time.Hour),
	} {
		runs = append(runs, &engine.Run{ID: runIDAt(at, i), FlowID: "token-refresh", Mode: "webhook",
			Status: engine.StatusSuccess, StartedAt: at, FinishedAt: at.Add(time.Millisecond)})
	}
	if err := st.InsertRuns(context.Background(), runs); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	s := startServe(t, flowsDir(t, nil), db, []string{"FLOWD_RETENTION_MAX_AGE=24h", "FLOWD_RETENTION_MAX_RUNS=1000"},
		"--retention-max-runs", "2")
	eventually(t, "the first pruning", func() bool { return strings.Contains(s.log.String(), "pruned runs") })
	if log := s.log.String(); !strings.Contains(log, "deletedByAge=3 deletedByCount=3") {
		t.Errorf("want 3 runs deleted by age and 3 beyond the flag's 2 per flow (not the env's 1000):\n%s", log)
	}
	var page struct{ Runs []engine.Run }
	if code := s.call("GET", "/api/runs", "", "", &page); code != 200 {
		t.Fatalf("GET /api/runs: %d", code)
	}
	if len(page.Runs) != 2 || page.Runs[0].ID != runs[7].ID || page.Runs[1].ID != runs[6].ID {
		t.Errorf("kept %+v, want the newest two", page.Runs)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestServeSettingsChecked: retention and cluster settings out of range are usage errors.
func TestServeSettingsChecked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "flowd.db")
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"negative count", nil, []string{"--retention-max-runs", "-1"}, "max runs per flow -1 is negative"},
		{"negative age in env", []string{"FLOWD_RETENTION_MAX_AGE=-1h"}, nil, "max age -1h0m0s is negative"},
		{"not a duration", []string{"FLOWD_RETENTION_MAX_AGE=fortnight"}, nil, `FLOWD_RETENTION_MAX_AGE="fortnight"`},
		{"not a number", []string{"FLOWD_RETENTION_MAX_RUNS=many"}, nil, `FLOWD_RETENTION_MAX_RUNS="many"`},
		{"cluster ttl too short", nil, []string{"--cluster-ttl", "500ms"}, "--cluster-ttl 500ms: must be at least 1s"},
		{"cluster ttl too short in env", []string{"FLOWD_CLUSTER_TTL=0s"}, nil, "--cluster-ttl 0s: must be at least 1s"},
		{"cluster ttl not a duration", []string{"FLOWD_CLUSTER_TTL=soon"}, nil, `FLOWD_CLUSTER_TTL="soon"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--flows", flowsDir(t, nil)}, tt.args...)
			r := flowd(t, tt.env, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tt.want)
			}
		})
	}
}
