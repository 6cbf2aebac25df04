package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultyTokenServer answers the first request with a good token and every later one as its
// fault says; it records when requests arrived.
type faultyTokenServer struct {
	*httptest.Server
	fault    func(w http.ResponseWriter, n int64)
	requests atomic.Int64
	mu       sync.Mutex
	arrived  []time.Time
	release  chan struct{} // closed at cleanup, ending requests a slow fault holds
}

func newFaultyTokenServer(t *testing.T, fault func(w http.ResponseWriter, n int64)) *faultyTokenServer {
	ts := &faultyTokenServer{fault: fault, release: make(chan struct{})}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.requests.Add(1)
		ts.mu.Lock()
		ts.arrived = append(ts.arrived, time.Now())
		ts.mu.Unlock()
		if n == 1 {
			w.Header().Set("Content-Type", "application/json")
			// Expires at once, so that the next run refreshes.
			fmt.Fprint(w, `{"access_token": "good-token", "token_type": "Bearer", "expires_in": 1}`)
			return
		}
		ts.fault(w, n)
	}))
	t.Cleanup(func() {
		close(ts.release)
		ts.Close()
	})
	return ts
}

// editTokenFlow rewrites the token flow in a flowsDir folder, calling edit with each node
// (its JSON object, to change in place).
func editTokenFlow(t *testing.T, dir string, edit func(node map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "token-refresh.json")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var def map[string]any
	if err := json.Unmarshal(src, &def); err != nil {
		t.Fatal(err)
	}
	for _, n := range def["nodes"].([]any) {
		edit(n.(map[string]any))
	}
	if src, err = json.Marshal(def); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
}

// withoutSchedule disables the token flow's schedule, so that only a test's calls run it.
func withoutSchedule(n map[string]any) {
	if n["type"] == "scheduleTrigger" {
		n["disabled"] = true
	}
}

// fastFailingTokenFlow is the shipped token flow with a short timeout and quick retries, so
// that faults show in a test's time; the schedule is off, so only the test's calls run it.
func fastFailingTokenFlow(t *testing.T) string {
	t.Helper()
	dir := flowsDir(t, nil)
	editTokenFlow(t, dir, func(n map[string]any) {
		withoutSchedule(n)
		if n["type"] == "httpRequest" {
			p := n["parameters"].(map[string]any)
			p["timeout"] = "300ms"
			p["retry"] = map[string]any{"maxTries": 2, "backoff": "50ms"}
		}
	})
	return dir
}

// TestTokenEndpointFaults: whatever the token endpoint does wrong, the run fails with a clear
// error naming the HTTP node, the old token stays and static data is never half-written.
func TestTokenEndpointFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     func(ts *faultyTokenServer) func(w http.ResponseWriter, n int64)
		wantNode  string // "" for the HTTP node
		wantError string
	}{
		{"down", func(ts *faultyTokenServer) func(http.ResponseWriter, int64) {
			return func(w http.ResponseWriter, _ int64) {
				// Drop the connection without an answer, as a dead upstream does.
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			}
		}, "", "EOF"},
		{"slower than the timeout", func(ts *faultyTokenServer) func(http.ResponseWriter, int64) {
			return func(w http.ResponseWriter, _ int64) { <-ts.release }
		}, "", "timed out after 300ms"},
		{"HTTP 500", func(*faultyTokenServer) func(http.ResponseWriter, int64) {
			return func(w http.ResponseWriter, _ int64) { http.Error(w, "token service unavailable", 500) }
		}, "", "HTTP 500"},
		{"garbage JSON", func(*faultyTokenServer) func(http.ResponseWriter, int64) {
			return func(w http.ResponseWriter, _ int64) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"access_token": "half`)
			}
		}, "", "JSON"},
		{"wrong content type", func(*faultyTokenServer) func(http.ResponseWriter, int64) {
			return func(w http.ResponseWriter, _ int64) {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, `<html><body>Log in to continue</body></html>`)
			}
		}, "2. set token in static data", "the token response has neither access_token nor AccessToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts *faultyTokenServer
			ts = newFaultyTokenServer(t, func(w http.ResponseWriter, n int64) { tt.fault(ts)(w, n) })
			s := startServe(t, fastFailingTokenFlow(t), filepath.Join(t.TempDir(), "flowd.db"), []string{"TOKEN_URL=" + ts.URL})

			var first map[string]any
			if code := s.call("POST", "/webhook/token-refresh", "", "", &first); code != 200 || first["accessToken"] != "good-token" {
				t.Fatalf("first call: %d %v", code, first)
			}
			before := staticOf(t, s)
			waitUntilPast(t, before["refreshAt"])

			var failed map[string]any
			code := s.call("POST", "/webhook/token-refresh", "", "", &failed)
			msg, _ := failed["error"].(string)
			node := cmp.Or(tt.wantNode, "get new accessToken")
			if code != http.StatusInternalServerError || !strings.Contains(msg, `"`+node+`"`) || !strings.Contains(msg, tt.wantError) {
				t.Fatalf("failing call: %d %v; want 500 naming %q and %q", code, failed, node, tt.wantError)
			}
			if after := staticOf(t, s); !reflect.DeepEqual(after, before) {
				t.Errorf("static data changed by a failed refresh:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestTokenEndpointRateLimitIsWaitedOut: a 429 with Retry-After is retried after the time it
// asks for, and the run then succeeds.
func TestTokenEndpointRateLimitIsWaitedOut(t *testing.T) {
	ts := newFaultyTokenServer(t, func(w http.ResponseWriter, n int64) {
		if n == 2 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": "token-%d", "expires_in": 3600}`, n)
	})
	s := startServe(t, fastFailingTokenFlow(t), filepath.Join(t.TempDir(), "flowd.db"), []string{"TOKEN_URL=" + ts.URL})
	var first map[string]any
	if code := s.call("POST", "/webhook/token-refresh", "", "", &first); code != 200 {
		t.Fatalf("first call: %d %v", code, first)
	}
	waitUntilPast(t, staticOf(t, s)["refreshAt"])
	var out map[string]any
	if code := s.call("POST", "/webhook/token-refresh", "", "", &out); code != 200 || out["accessToken"] != "token-3" {
		t.Fatalf("call after a 429: %d %v", code, out)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if gap := ts.arrived[2].Sub(ts.arrived[1]); gap < time.Second {
		t.Errorf("retried %v after a 429 asking for 1s", gap)
	}
}

// staticOf reads the token flow's static data through the API.
func staticOf(t *testing.T, s *server) map[string]any {
	t.Helper()
	var out struct {
		Data map[string]any `json:"data"`
	}
	if code := s.call("GET", "/api/flows/token-refresh/static?reveal=1", "", "", &out); code != 200 {
		t.Fatalf("static data: %d", code)
	}
	return out.Data
}
