package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
)

// TestRunsRefusedWhileTheStoreCannotWrite: with a full disk or a read-only database, every
// way of starting a run answers 503 with Retry-After, and nothing runs.
func TestRunsRefusedWhileTheStoreCannotWrite(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	e.store.mu.Lock()
	e.store.failCreate = fmt.Errorf("create run: database or disk is full: %w", engine.ErrStoreUnavailable)
	e.store.mu.Unlock()

	for _, tt := range []struct{ name, path, ctype, accept string }{
		{"lastNode webhook", "/webhook/token", "application/json", ""},
		{"onReceived webhook", "/webhook/broken", "application/json", ""},
		{"API run", "/api/flows/token/run", "application/json", ""},
		{"UI run now", "/flows/token/run", "application/x-www-form-urlencoded", "text/html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, http.MethodPost, tt.path, tt.ctype, strings.NewReader(""), "Accept", tt.accept)
			if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
				t.Fatalf("status %d, Retry-After %q: %s", res.status, res.header.Get("Retry-After"), res.body)
			}
			if !strings.Contains(string(res.body), "disk is full") {
				t.Errorf("the answer does not say why: %s", res.body)
			}
		})
	}
	if runs, _ := e.store.ListRuns(t.Context(), engine.RunFilter{}); len(runs) != 0 {
		t.Errorf("%d runs stored while the store could not write", len(runs))
	}

	// Once writes succeed again, runs start again.
	e.store.mu.Lock()
	e.store.failCreate = nil
	e.store.mu.Unlock()
	if r := e.runWebhook(t, "token"); r.Status != engine.StatusSuccess {
		t.Errorf("after recovery: %s", r.Status)
	}
}
