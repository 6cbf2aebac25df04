package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The JSON the bare handler answers, with bytes an argument could mangle: quotes, spaces,
// an escaped and a raw newline, non-ASCII.
var bareBody = []byte("{\"accessToken\": \"tök en\\n\", \"refreshAt\": \"2030-01-01T00:00:00Z\"}\n")

// postBare POSTs a body to url and checks the answer is bareBody as JSON.
func postBare(t *testing.T, url string) {
	t.Helper()
	res, err := http.Post(url, "text/plain", strings.NewReader("ignored request body"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, bareBody) {
		t.Fatalf("status %d, Content-Type %q, body %q; want 200, application/json, %q", res.StatusCode, res.Header.Get("Content-Type"), body, bareBody)
	}
}

// TestBareProcess starts the bare handler's process (this test binary re-executed, see
// TestMain), checks that it serves the body it was given on 127.0.0.1, and that it exits
// cleanly when told to: its stdin closed, as stop does, or a signal, as Ctrl-C sends.
func TestBareProcess(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(p *bareProc) error
	}{
		{"stdin closed", (*bareProc).stop},
		{"SIGINT", func(p *bareProc) error {
			return p.end(func() error { return p.cmd.Process.Signal(os.Interrupt) }, 10*time.Second)
		}},
		{"SIGTERM", func(p *bareProc) error {
			return p.end(func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }, 10*time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := startBareProc(t.Context(), bareBody)
			if err != nil {
				t.Fatal(err)
			}
			defer p.kill()
			if p.Pid() == os.Getpid() || !strings.HasPrefix(p.Addr, "127.0.0.1:") {
				t.Fatalf("bare process pid %d (this one %d), address %q", p.Pid(), os.Getpid(), p.Addr)
			}
			postBare(t, p.URL("/webhook/token-refresh"))
			if err := tc.end(p); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.done:
			default:
				t.Fatal("end returned before the process exited")
			}
			if _, err := http.Post(p.URL("/"), "text/plain", nil); err == nil {
				t.Error("the address still answers after the process exited")
			}
		})
	}
}

// TestBareProcessKill: kill, what the tool does on its way out after an error, ends it too.
func TestBareProcessKill(t *testing.T) {
	p, err := startBareProc(t.Context(), bareBody)
	if err != nil {
		t.Fatal(err)
	}
	p.kill()
	if p.err == nil {
		t.Error("a killed process reported a clean exit")
	}
	if err := p.stop(); err == nil || !strings.Contains(err.Error(), "already exited") {
		t.Errorf("stop after kill: %v, want an already-exited error", err)
	}
}

func TestBareBadInput(t *testing.T) {
	if _, err := startBareProc(t.Context(), []byte("{\x00}")); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("body with a NUL: %v, want an error that says so", err)
	}
	for _, args := range [][]string{nil, {"a", "b"}} {
		var stdout, stderr bytes.Buffer
		if code := serveBare(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "one argument") {
			t.Errorf("serveBare(%q): exit %d, stderr %q, want 2 and a usage error", args, code, stderr.String())
		}
	}
}

// TestServeBareUntilCancelled runs the hidden mode in this process: it tells its address
// first, serves, and returns 0 when ctx is done although stdin stays open.
func TestServeBareUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	outR, outW := io.Pipe()
	code := make(chan int, 1)
	go func() {
		var stderr bytes.Buffer
		code <- serveBare(ctx, []string{string(bareBody)}, stdinR, outW, &stderr)
		outW.Close()
	}()
	addr, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	postBare(t, "http://"+strings.TrimSpace(addr)+"/")
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit code %d after cancel, want 0", c)
	}
}
