package main

import (
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// selfCallingFlow calls its own webhook and answers with what that call answered: every run
// waits for another, without end.
const selfCallingFlow = `{"id": "loop", "nodes": [
	{"name": "Hook", "type": "webhook", "parameters": {"path": "loop", "httpMethod": "POST", "responseMode": "lastNode"}},
	{"name": "Call myself", "type": "httpRequest", "parameters": {"method": "POST", "url": "{{ $env.SELF_URL }}/webhook/loop", "timeout": "60s"}}],
 "connections": {"Hook": ["Call myself"]}}`

// TestFlowCallingItselfCannotWedgeTheServer: a flow that calls its own webhook piles up runs
// until the per-flow limit refuses one; the chain then unwinds with an error, and meanwhile
// the server answers everything else.
func TestFlowCallingItselfCannotWedgeTheServer(t *testing.T) {
	ts := newTokenServer(t, 3600)
	dir := flowsDir(t, map[string]string{"loop.json": selfCallingFlow})
	// SELF_URL needs the port, known only once flowd listens: a fixed free port is taken first.
	addr := freeLoopbackAddr(t)
	s := startServe(t, dir, filepath.Join(t.TempDir(), "flowd.db"),
		[]string{"TOKEN_URL=" + ts.URL, "SELF_URL=http://" + addr}, "--addr", addr, "--max-runs-per-flow", "50")

	var answered atomic.Bool
	var code int
	var out map[string]any
	go func() {
		code = s.call("POST", "/webhook/loop", "application/json", `{}`, &out)
		answered.Store(true)
	}()
	// While the chain grows, other flows and the API keep answering.
	for !answered.Load() {
		var tok map[string]any
		if c := s.call("POST", "/webhook/token-refresh", "", "", &tok); c != 200 {
			t.Fatalf("token flow while the loop runs: %d %v", c, tok)
		}
		if c := s.call("GET", "/healthz", "", "", nil); c != 200 {
			t.Fatalf("healthz while the loop runs: %d", c)
		}
		time.Sleep(10 * time.Millisecond) // pacing the side traffic, not synchronising
	}
	// Each level of the chain fails with the error of the one it called, down to the 429.
	if msg, _ := out["error"].(string); code != 500 || !strings.Contains(msg, `node \"Call myself\"`) {
		t.Fatalf("the looping call: %d %v; want it to fail once the limit refused a run", code, out)
	}
	if !strings.Contains(s.log.String(), "the flow has too many runs in progress") {
		t.Error("the refusal was not logged")
	}
	if c := s.stop(syscall.SIGTERM); c != 0 {
		t.Fatalf("exit %d", c)
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
