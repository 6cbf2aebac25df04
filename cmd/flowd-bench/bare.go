package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The bare handler is the floor flowd is measured against: a net/http handler that reads the
// request and answers the same JSON bytes the token flow answers. It runs in a process of its
// own, as flowd does, so that both pay the same cross-process wake-ups; startBare also runs it
// inside this process, as a reference.

// bareEnv set to "1" makes this program the bare handler's process instead of the benchmark
// (see serveBare): startBareProc re-executes the tool's own binary with it.
const bareEnv = "FLOWD_BENCH_BARE"

// bareHandler reads the request and answers body as JSON.
func bareHandler(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// startBare starts the bare handler answering body on 127.0.0.1 in this process.
func startBare(body []byte) (*localServer, error) {
	s, err := startLocal(bareHandler(body))
	if err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	return s, nil
}

// serveBare is the bare handler's process: args is the one body to answer. It serves on
// 127.0.0.1:0, writes the address as the first line of stdout, and serves until stdin reaches
// its end (the parent closed it, or died) or ctx is done; it returns the exit code.
func serveBare(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "flowd-bench: %s=1 serves the bare handler and wants one argument, the body to answer; got %d\n", bareEnv, len(args))
		return 2
	}
	s, err := startBare([]byte(args[0]))
	if err != nil {
		fmt.Fprintln(stderr, "flowd-bench:", err)
		return 1
	}
	defer s.Close()
	if _, err := fmt.Fprintln(stdout, s.ln.Addr()); err != nil {
		fmt.Fprintln(stderr, "flowd-bench: bare handler: tell the address:", err)
		return 1
	}
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return 0
}

// bareProc is the bare handler in a process of its own: this tool's binary re-executed.
type bareProc struct {
	child
	Addr  string
	stdin io.WriteCloser
	// stderr is what the process wrote there; read it only once done is closed (Wait has
	// copied it all by then).
	stderr bytes.Buffer
}

// startBareProc starts the bare handler's process answering body and returns once it serves
// (it has told its address), or with an error. The caller must stop or kill it.
func startBareProc(ctx context.Context, body []byte) (*bareProc, error) {
	if bytes.IndexByte(body, 0) >= 0 {
		return nil, errors.New("bare handler: the body to answer holds a NUL byte, which a command-line argument cannot carry")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bare handler: find this program to re-execute: %w", err)
	}
	cmd := exec.Command(exe, string(body))
	cmd.Env = append(cleanEnv(), bareEnv+"=1")
	p := &bareProc{}
	cmd.Stderr = &p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	// Stdout is a pipe of our own, not cmd.StdoutPipe, so that reading the address line can
	// race with Wait, which would close the latter.
	out, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	defer out.Close()
	cmd.Stdout = w
	err = p.start(cmd, nil)
	w.Close()
	if err != nil {
		p.stdin.Close()
		return nil, fmt.Errorf("bare handler: start %s: %w", exe, err)
	}

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n') // "" when the process exits first
		line <- s
	}()
	var addr string
	select {
	case addr = <-line:
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		p.kill()
		return nil, errors.New("bare handler: its process told no address within 30s")
	}
	host, _, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil || host != "127.0.0.1" {
		p.kill()
		return nil, fmt.Errorf("bare handler: its process said %q, want its 127.0.0.1 address; exit: %v; stderr: %s", addr, p.err, p.stderr.String())
	}
	p.Addr = strings.TrimSpace(addr)
	return p, nil
}

// URL is the address of path on this bare handler.
func (p *bareProc) URL(path string) string { return "http://" + p.Addr + path }

// stop closes the process's stdin, which tells it to exit, and waits for a clean exit.
func (p *bareProc) stop() error {
	if err := p.end(p.stdin.Close, 10*time.Second); err != nil {
		return fmt.Errorf("stop the bare handler's process: %w; stderr: %s", err, p.stderr.String())
	}
	return nil
}
