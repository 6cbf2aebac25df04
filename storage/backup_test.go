package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

func TestBackupWhileWriting(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	write := func(i int) {
		r := testRun(engine.NewRunID(time.Now()), "busy", i)
		if err := s.CreateRun(ctx, r); err != nil {
			t.Error(err)
			return
		}
		r.Status, r.FinishedAt, r.Nodes = engine.StatusSuccess, r.StartedAt.Add(time.Millisecond), finishedRun(r.ID).Nodes
		if err := s.FinishRun(ctx, r); err != nil {
			t.Error(err)
		}
	}
	for i := range 100 {
		write(i)
	}
	if err := s.CommitStatic(ctx, &engine.StaticCommit{FlowID: "busy", Changes: []engine.StaticChange{{Key: "token", After: "t-1"}}}); err != nil {
		t.Fatal(err)
	}

	// A writer keeps going while the backup runs.
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 100; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			write(i)
			written.Add(1)
		}
	})
	await(t, "writes during the backup", func() bool { return written.Load() > 10 })
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := Backup(ctx, s.Path(), dst, false); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("copy mode %v, want 0600", fi.Mode().Perm())
	}
	c, err := Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	runs, err := c.ListRuns(ctx, engine.RunFilter{FlowID: "busy", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < 110 {
		t.Errorf("the copy has %d runs, want at least the 110 written before it", len(runs))
	}
	for _, r := range runs {
		if r.Status != engine.StatusSuccess {
			// A run is created and finished in separate transactions; a snapshot between them is
			// consistent, and shows the run as running.
			if r.Status != engine.StatusRunning {
				t.Errorf("run %s in the copy has status %s", r.ID, r.Status)
			}
		}
	}
	st, err := c.Static(ctx, "busy")
	if err != nil || st["token"] != "t-1" {
		t.Errorf("static data in the copy: %v, %v", st, err)
	}

	// An existing file is kept unless forced.
	if err := Backup(ctx, s.Path(), dst, false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("backup over an existing file: %v", err)
	}
	if err := Backup(ctx, s.Path(), dst, true); err != nil {
		t.Errorf("forced backup: %v", err)
	}
	if err := Backup(ctx, filepath.Join(t.TempDir(), "missing.db"), filepath.Join(t.TempDir(), "x.db"), false); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".copy.db.tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}
