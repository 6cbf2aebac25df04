package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// startBlockedRun starts `flowd run` on a flow that commits a static write and then calls a
// server that never answers; it returns once that call has arrived, so the write is committed
// and the run is in flight.
func startBlockedRun(t *testing.T) (cmd *exec.Cmd, stdout *bytes.Buffer, db string) {
	t.Helper()
	arrived := make(chan struct{}, 1)
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); srv.Close() })

	dir := t.TempDir()
	db = filepath.Join(dir, "flowd.db")
	flow := filepath.Join(dir, "slow.json")
	if err := os.WriteFile(flow, []byte(`{"id": "slow", "nodes": [
		{"name": "start", "type": "webhook", "parameters": {"path": "slow"}},
		{"name": "save", "type": "code", "parameters": {"code": ["$static.marker = 'committed'"]}},
		{"name": "call", "type": "httpRequest", "parameters": {"url": "`+srv.URL+`", "timeout": "1m"}}
	], "connections": {"start": ["save"], "save": ["call"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(flowdBin, "run", flow, "--db", db)
	stdout = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the run never reached its HTTP call")
	}
	return cmd, stdout, db
}

func openStore(t *testing.T, db string) *storage.SQLite {
	t.Helper()
	s, err := storage.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCommittedStaticDataSurvivesKill9(t *testing.T) {
	cmd, _, db := startBlockedRun(t)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s := openStore(t, db)
	st, err := s.Static(context.Background(), "slow")
	if err != nil {
		t.Fatal(err)
	}
	if st["marker"] != "committed" {
		t.Fatalf("static data after kill -9 = %v", st)
	}
	runs, err := s.ListRuns(context.Background(), engine.RunFilter{FlowID: "slow", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Status != engine.StatusRunning {
		t.Fatalf("runs after kill -9 = %+v, want the one run still marked running", runs)
	}
	if err := s.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInterruptCancelsTheRunAndRecordsIt(t *testing.T) {
	cmd, stdout, db := startBlockedRun(t)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	var rec engine.Run
	if err := json.Unmarshal(stdout.Bytes(), &rec); err != nil {
		t.Fatalf("record: %v\n%s", err, stdout)
	}
	if rec.Status != engine.StatusCanceled || rec.ErrorNode != "call" {
		t.Fatalf("printed run %s at %q", rec.Status, rec.ErrorNode)
	}
	stored, err := openStore(t, db).GetRun(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != engine.StatusCanceled || len(stored.Nodes) != 3 || stored.Nodes[1].Static[0].After != "committed" {
		t.Fatalf("stored run %+v", stored)
	}
}
