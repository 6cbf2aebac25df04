package main

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/flowd/flowd/engine"
)

func TestBackupWhileServing(t *testing.T) {
	ts := newTokenServer(t, 3600)
	db := filepath.Join(t.TempDir(), "flowd.db")
	s := startServe(t, flowsDir(t, nil), db, []string{"TOKEN_URL=" + ts.URL})
	for range 20 {
		if code := s.call("POST", "/webhook/token-refresh", "", "", nil); code != 200 {
			t.Fatalf("webhook: %d", code)
		}
	}
	// Load goes on during the backup.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				s.call("POST", "/webhook/token-refresh", "", "", nil)
			}
		}
	}()
	dst := filepath.Join(t.TempDir(), "backup.db")
	out, err := exec.Command(flowdBin, "backup", "--db", db, dst).CombinedOutput()
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("flowd backup: %v\n%s", err, out)
	}
	st := openStore(t, dst)
	if err := st.IntegrityCheck(t.Context()); err != nil {
		t.Fatal(err)
	}
	runs, err := st.ListRuns(t.Context(), engine.RunFilter{Limit: 1000})
	if err != nil || len(runs) < 20 {
		t.Fatalf("%d runs in the backup (%v), want at least 20", len(runs), err)
	}
	if tok, _ := st.Static(t.Context(), "token-refresh"); tok["accessToken"] != "tok-1" {
		t.Errorf("static data in the backup: %v", tok)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
