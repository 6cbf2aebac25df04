package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// server is a `flowd serve` process started by a test.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan struct{}
	err  error
}

// syncBuffer collects a process's log for assertions while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServe starts flowd serve on a free loopback port and waits until it listens.
func startServe(t *testing.T, flowsDir, db string, env []string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--flows", flowsDir}, extra...)
	cmd := exec.Command(flowdBin, args...)
	cmd.Env = commandEnv(env)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, line)
			if m := listeningRE.FindStringSubmatch(line); m != nil && !found {
				found = true
				addr <- m[1]
			}
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("flowd serve log:\n%s", s.log.String())
		}
	})
	select {
	case s.addr = <-addr:
	case <-s.done:
		t.Fatalf("flowd serve exited: %v\n%s", s.err, s.log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("flowd serve did not start:\n%s", s.log.String())
	}
	return s
}

// stop sends sig and waits for the process to exit, returning its exit code.
func (s *server) stop(sig os.Signal) int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("flowd serve did not stop on %v", sig)
	}
	if ee, ok := s.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// call sends a request and decodes a JSON answer into out (when not nil).
func (s *server) call(method, path, contentType, body string, out any) int {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url(path), strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flowsDir makes a temp folder with the shipped token flow and any extra flow files.
func flowsDir(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "flows", "token-refresh.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token-refresh.json"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestServeTokenFlowByWebhook(t *testing.T) {
	ts := newTokenServer(t, 3600)
	s := startServe(t, flowsDir(t, nil), filepath.Join(t.TempDir(), "flowd.db"), []string{"TOKEN_URL=" + ts.URL})
	var first, second map[string]any
	if code := s.call("POST", "/webhook/token-refresh", "", "", &first); code != 200 || first["accessToken"] != "tok-1" {
		t.Fatalf("first call: %d %v", code, first)
	}
	if code := s.call("POST", "/webhook/token-refresh", "", "", &second); code != 200 || second["accessToken"] != "tok-1" || ts.hits.Load() != 1 {
		t.Fatalf("second call: %d %v, %d hits", code, second, ts.hits.Load())
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestServeBurstRefreshesOnce(t *testing.T) {
	for _, delay := range []time.Duration{0, 200 * time.Millisecond} {
		t.Run(fmt.Sprintf("endpoint delay %s", delay), func(t *testing.T) {
			var hits atomic.Int64
			tokenURL := slowTokenServer(t, delay, &hits)
			s := startServe(t, flowsDir(t, nil), filepath.Join(t.TempDir(), "flowd.db"), []string{"TOKEN_URL=" + tokenURL})
			for round := range 10 {
				burstRound(t, round, []*server{s}, &hits)
			}
		})
	}
}

// slowTokenServer is a token endpoint that takes delay to answer, counting its requests in
// hits and naming its tokens tok-<hits>. It returns the endpoint's URL.
func slowTokenServer(t *testing.T, delay time.Duration, hits *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		time.Sleep(delay) // the endpoint's latency, not synchronisation
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": "tok-%d", "expires_in": 3600}`, n)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// burstRound resets the token flow's static data, then sends 50 webhook requests at once,
// spread over the servers in turn: the token endpoint (counting in hits, naming its tokens
// tok-<hits>) must see exactly one request, and every response carry that token.
func burstRound(t *testing.T, round int, servers []*server, hits *atomic.Int64) {
	t.Helper()
	const burst = 50
	// Reset static data: every round starts with no token.
	if code := servers[0].call("DELETE", "/api/flows/token-refresh/static", "", "", nil); code/100 != 2 {
		t.Fatalf("reset static: %d", code)
	}
	before := hits.Load()
	tokens := make([]any, burst)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			<-start
			res, err := http.Post(servers[i%len(servers)].url("/webhook/token-refresh"), "application/json", nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var out map[string]any
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
				t.Errorf("status %d: %v %v", res.StatusCode, out, err)
			}
			tokens[i] = out["accessToken"]
		})
	}
	close(start)
	wg.Wait()
	if got := hits.Load() - before; got != 1 {
		t.Fatalf("round %d: %d token requests, want 1", round, got)
	}
	want := fmt.Sprintf("tok-%d", hits.Load())
	for i, tok := range tokens {
		if tok != want {
			t.Fatalf("round %d: response %d (from server %d) carried %v, want %s", round, i, i%len(servers), tok, want)
		}
	}
}

const slowFlow = `{"id": "slow", "nodes": [
	{"name": "hook", "type": "webhook", "parameters": {"path": "slow", "httpMethod": "POST", "responseMode": "lastNode"}},
	{"name": "call", "type": "httpRequest", "parameters": {"url": "{{ $env.SLOW_URL }}", "timeout": "1m"}}
], "connections": {"hook": ["call"]}}`

// blockingServer answers only when released; arrived receives each request's arrival.
func blockingServer(t *testing.T) (url string, arrived <-chan struct{}, release func()) {
	t.Helper()
	arr := make(chan struct{}, 16)
	rel := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arr <- struct{}{}
		select {
		case <-rel:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"done": true}`)
		case <-r.Context().Done():
		}
	}))
	releaseFn := func() { once.Do(func() { close(rel) }) }
	t.Cleanup(func() { releaseFn(); srv.Close() })
	return srv.URL, arr, releaseFn
}

func TestServeKill9ThenRestart(t *testing.T) {
	ts := newTokenServer(t, 3600)
	slowURL, arrived, _ := blockingServer(t)
	dir := flowsDir(t, map[string]string{"slow.json": slowFlow})
	db := filepath.Join(t.TempDir(), "flowd.db")
	env := []string{"TOKEN_URL=" + ts.URL, "SLOW_URL=" + slowURL}

	s := startServe(t, dir, db, env)
	var tok map[string]any
	if code := s.call("POST", "/webhook/token-refresh", "", "", &tok); code != 200 || tok["accessToken"] != "tok-1" {
		t.Fatalf("token: %d %v", code, tok)
	}
	go func() { _, _ = http.Post(s.url("/webhook/slow"), "application/json", nil) }()
	<-arrived // a run is in flight
	s.stop(syscall.SIGKILL)

	s = startServe(t, dir, db, env)
	if !strings.Contains(s.log.String(), "marked runs left running by a previous process as crashed") {
		t.Errorf("restart did not report crashed runs:\n%s", s.log.String())
	}
	var crashed struct{ Runs []engine.Run }
	if code := s.call("GET", "/api/runs?status=crashed", "", "", &crashed); code != 200 || len(crashed.Runs) != 1 || crashed.Runs[0].FlowID != "slow" || crashed.Runs[0].FinishedAt.IsZero() {
		t.Fatalf("crashed runs: %d %+v", code, crashed.Runs)
	}
	if code := s.call("POST", "/webhook/token-refresh", "", "", &tok); code != 200 || tok["accessToken"] != "tok-1" || ts.hits.Load() != 1 {
		t.Fatalf("after restart: %d %v, %d token requests (want the stored token reused)", code, tok, ts.hits.Load())
	}
	s.stop(syscall.SIGTERM)
	if err := openStore(t, db).IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestServeSIGTERMDrainsRunsInFlight(t *testing.T) {
	slowURL, arrived, release := blockingServer(t)
	s := startServe(t, flowsDir(t, map[string]string{"slow.json": slowFlow}), filepath.Join(t.TempDir(), "flowd.db"), []string{"SLOW_URL=" + slowURL})

	type answer struct {
		code int
		body map[string]any
	}
	got := make(chan answer, 1)
	go func() {
		var body map[string]any
		code := s.call("POST", "/webhook/slow", "", "", &body)
		got <- answer{code, body}
	}()
	<-arrived
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused while the run in flight goes on.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	eventually(t, "new connections to be refused", func() bool {
		res, err := fresh.Get(s.url("/healthz"))
		if err == nil {
			res.Body.Close()
		}
		return err != nil
	})
	release()
	a := <-got
	if a.code != 200 || a.body["done"] != true {
		t.Fatalf("in-flight request got %d %v", a.code, a.body)
	}
	<-s.done
	if s.err != nil {
		t.Fatalf("exit: %v", s.err)
	}
}

func TestServeReloadsOnFileChange(t *testing.T) {
	dir := flowsDir(t, nil)
	s := startServe(t, dir, filepath.Join(t.TempDir(), "flowd.db"), nil)
	hello := `{"id": "hello", "nodes": [{"name": "in", "type": "webhook", "parameters": {"path": "hello", "responseMode": "lastNode"}},
		{"name": "out", "type": "code", "parameters": {"return": {"v": "%s"}}}], "connections": {"in": ["out"]}}`
	if err := os.WriteFile(filepath.Join(dir, "hello.json"), []byte(fmt.Sprintf(hello, "one")), 0o644); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	eventually(t, "the new flow to be served", func() bool {
		return s.call("GET", "/webhook/hello", "", "", &out) == 200 && out["v"] == "one"
	})
	// An invalid edit keeps the running version and says why.
	if err := os.WriteFile(filepath.Join(dir, "hello.json"), []byte(`{"nodes": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rejected reload to be logged", func() bool { return strings.Contains(s.log.String(), "reload rejected") })
	if code := s.call("GET", "/webhook/hello", "", "", &out); code != 200 || out["v"] != "one" {
		t.Fatalf("after a bad edit: %d %v", code, out)
	}
	if !strings.Contains(s.log.String(), "hello.json:1:12: invalid JSON") {
		t.Errorf("the log does not say what is wrong:\n%s", s.log.String())
	}
	// A good edit is picked up; SIGHUP reloads too.
	if err := os.WriteFile(filepath.Join(dir, "hello.json"), []byte(fmt.Sprintf(hello, "two")), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the edit to be served", func() bool {
		return s.call("GET", "/webhook/hello", "", "", &out) == 200 && out["v"] == "two"
	})
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SIGHUP to reload", func() bool { return strings.Contains(s.log.String(), "trigger=SIGHUP") })
}

func TestServeRefusesInvalidFlows(t *testing.T) {
	dir := flowsDir(t, map[string]string{"broken.json": `{"nodes": [{"name": "x", "type": "nope"}]}`})
	r := flowd(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "f.db"), "--flows", dir)
	if r.code != 1 || !strings.Contains(r.stderr, `broken.json:1:34: node "x": unknown node type "nope"`) {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	clash := flowsDir(t, map[string]string{"clash.json": `{"id": "clash", "nodes": [{"name": "w", "type": "webhook", "parameters": {"path": "token-refresh", "httpMethod": "POST"}}]}`})
	r = flowd(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "f.db"), "--flows", clash)
	if r.code != 1 || !strings.Contains(r.stderr, "clash.json") || !strings.Contains(r.stderr, "token-refresh.json") {
		t.Fatalf("a webhook clash: exit %d:\n%s", r.code, r.stderr)
	}
}

func TestServeWebhookErrors(t *testing.T) {
	s := startServe(t, flowsDir(t, nil), filepath.Join(t.TempDir(), "flowd.db"), []string{"TOKEN_URL=http://127.0.0.1:1/"}, "--max-body", "1024")
	tests := []struct {
		name, method, path, ctype, body string
		want                            int
	}{
		{"unknown path", "POST", "/webhook/nope", "", "", 404},
		{"wrong method", "GET", "/webhook/token-refresh", "", "", 405},
		{"too large", "POST", "/webhook/token-refresh", "text/plain", strings.Repeat("x", 2048), 413},
		{"malformed JSON", "POST", "/webhook/token-refresh", "application/json", `{"a":`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out map[string]any
			if code := s.call(tt.method, tt.path, tt.ctype, tt.body, &out); code != tt.want || out["error"] == nil {
				t.Fatalf("%d %v, want %d with an error", code, out, tt.want)
			}
		})
	}
}

func TestServeAPIPaging(t *testing.T) {
	s := startServe(t, flowsDir(t, map[string]string{"hello.json": `{"id": "hello", "nodes": [
		{"name": "in", "type": "webhook", "parameters": {"path": "hello"}}]}`}), filepath.Join(t.TempDir(), "flowd.db"), nil)
	const n = 23
	for range n {
		if code := s.call("POST", "/api/flows/hello/run", "application/json", `{"input": {"x": 1}}`, nil); code != 200 {
			t.Fatalf("manual run: %d", code)
		}
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		var page struct {
			Runs []engine.Run
			Next string
		}
		if code := s.call("GET", "/api/runs?flow=hello&limit=5&before="+cursor, "", "", &page); code != 200 {
			t.Fatalf("page: %d", code)
		}
		pages++
		for _, r := range page.Runs {
			if seen[r.ID] {
				t.Fatalf("run %s listed twice", r.ID)
			}
			seen[r.ID] = true
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(seen) != n || pages != 5 {
		t.Fatalf("%d runs in %d pages, want %d in 5", len(seen), pages, n)
	}
}

func TestServeScheduleFiresEverySecond(t *testing.T) {
	s := startServe(t, flowsDir(t, map[string]string{"tick.json": `{"id": "tick", "nodes": [
		{"name": "every second", "type": "scheduleTrigger", "parameters": {"interval": "1s"}}]}`}), filepath.Join(t.TempDir(), "flowd.db"), nil)
	var list struct{ Runs []engine.Run }
	eventually(t, "four scheduled runs", func() bool {
		s.call("GET", "/api/runs?flow=tick", "", "", &list)
		return len(list.Runs) >= 4
	})
	s.stop(syscall.SIGTERM)
	// The runs are a second apart: one more than the whole seconds between the first and the
	// last start — or two more, as a busy machine may start one tick's run late.
	first, last := list.Runs[len(list.Runs)-1].StartedAt, list.Runs[0].StartedAt
	span := last.Sub(first)
	if lo := int(span/time.Second) + 1; len(list.Runs) < lo || len(list.Runs) > lo+1 {
		t.Fatalf("%d runs over %s, want %d or %d", len(list.Runs), span, lo, lo+1)
	}
	for _, r := range list.Runs {
		if r.Mode != "schedule" || r.Trigger != "every second" || r.Status != engine.StatusSuccess {
			t.Fatalf("run %+v", r)
		}
	}
}

// startInProcess starts the whole server in this process on 127.0.0.1:0 with a temp dir.
func startInProcess(t *testing.T, flows map[string]string) *app {
	t.Helper()
	return startInProcessLogging(t, flows, io.Discard)
}

func startInProcessLogging(t *testing.T, flows map[string]string, log io.Writer) *app {
	t.Helper()
	dir := t.TempDir()
	for name, body := range flows {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := serveConfig{Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "flowd.db"), FlowsDir: dir,
		MaxBodyBytes: 1 << 20, ShutdownTimeout: 10 * time.Second}
	a, err := startApp(t.Context(), cfg, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// awaitGoroutines waits until no more goroutines run than base, and fails with their stacks
// when that does not happen.
func awaitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling an observable condition, not synchronisation
	}
}

func TestServeInProcessShutdownLeavesNoGoroutines(t *testing.T) {
	// os/signal starts one goroutine for the process on first use; it is not the server's.
	warm := make(chan os.Signal, 1)
	signal.Notify(warm, syscall.SIGUSR2)
	signal.Stop(warm)
	base := runtime.NumGoroutine()
	a := startInProcess(t, map[string]string{
		"hello.json": `{"id": "hello", "nodes": [{"name": "in", "type": "webhook", "parameters": {"path": "hello", "responseMode": "lastNode"}},
			{"name": "out", "type": "code", "parameters": {"return": {"v": 1}}}], "connections": {"in": ["out"]}}`,
		"tick.json": `{"id": "tick", "nodes": [{"name": "t", "type": "scheduleTrigger", "parameters": {"interval": "1h"}}]}`,
	})
	client := &http.Client{Transport: &http.Transport{}}
	for _, p := range []string{"/webhook/hello", "/api/flows", "/healthz", "/metrics"} {
		res, err := client.Get("http://" + a.Addr() + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
	}
	client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	awaitGoroutines(t, base)
}

func TestServeSIGHUPDuringShutdownDoesNotKill(t *testing.T) {
	slowURL, arrived, release := blockingServer(t)
	s := startServe(t, flowsDir(t, map[string]string{"slow.json": slowFlow}), filepath.Join(t.TempDir(), "flowd.db"), []string{"SLOW_URL=" + slowURL})
	got := make(chan error, 1)
	go func() {
		res, err := http.Post(s.url("/webhook/slow"), "application/json", nil)
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 200 {
				err = fmt.Errorf("status %d", res.StatusCode)
			}
		}
		got <- err
	}()
	<-arrived
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the shutdown to begin", func() bool { return strings.Contains(s.log.String(), `msg="shutting down"`) })
	// A reload signal (logrotate, systemd's ExecReload…) while runs drain must not kill the
	// process: the run in flight still finishes, its caller is answered and the store closes.
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-got; err != nil {
		t.Errorf("in-flight request: %v", err)
	}
	<-s.done
	if s.err != nil {
		t.Fatalf("exit: %v", s.err)
	}
}

func TestServeDeadlineAnswersLastNodeCallers(t *testing.T) {
	slowURL, arrived, _ := blockingServer(t)
	s := startServe(t, flowsDir(t, map[string]string{"slow.json": slowFlow}), filepath.Join(t.TempDir(), "flowd.db"),
		[]string{"SLOW_URL=" + slowURL}, "--shutdown-timeout", "200ms")
	type answer struct {
		code int
		body map[string]any
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		var a answer
		res, err := http.Post(s.url("/webhook/slow"), "application/json", nil)
		if err == nil {
			defer res.Body.Close()
			a.code = res.StatusCode
			err = json.NewDecoder(res.Body).Decode(&a.body)
		}
		a.err = err
		got <- a
	}()
	<-arrived
	s.stop(syscall.SIGTERM)
	// The run was canceled at the deadline; its caller is told so before flowd exits.
	a := <-got
	if a.err != nil || a.code != 500 || a.body["error"] != "run canceled" || a.body["runId"] == nil {
		t.Fatalf("caller got %d %v %v", a.code, a.body, a.err)
	}
}

func TestServeLogsDisabledTriggers(t *testing.T) {
	var log syncBuffer
	a := startInProcessLogging(t, map[string]string{
		"off.json": `{"id": "off", "nodes": [
			{"name": "hook", "type": "webhook", "disabled": true, "parameters": {"path": "off"}},
			{"name": "tick", "type": "scheduleTrigger", "disabled": true, "parameters": {"interval": "1h"}},
			{"name": "on", "type": "scheduleTrigger", "parameters": {"interval": "1h"}}]}`,
	}, &log)
	t.Cleanup(func() { _ = a.shutdown(context.Background()) })
	text := log.String()
	for _, want := range []string{
		`msg=webhook flow=off trigger=hook disabled=true`,
		`msg=schedule flow=off trigger=tick disabled=true`,
		`msg=schedule flow=off trigger=on next=`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(text, "0001-01-01") || strings.Contains(text, "/webhook/off") {
		t.Errorf("a disabled trigger is logged as live")
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestServeStopsWhenServingFails(t *testing.T) {
	a := startInProcess(t, nil)
	t.Cleanup(func() { _ = a.shutdown(context.Background()) })
	errc := make(chan error, 1)
	go func() { errc <- a.wait(t.Context()) }()
	a.ln.Close() // Serve fails as on a broken listener
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("wait returned nil after Serve failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not notice that Serve failed")
	}
}

// /metrics tells how well the store's group commit batches: every run's start and end are
// counted as run writes, in the commits that wrote them.
func TestServeMetricsCountStoreWrites(t *testing.T) {
	a := startInProcess(t, map[string]string{
		"hello.json": `{"id": "hello", "nodes": [{"name": "in", "type": "webhook", "parameters": {"path": "hello", "responseMode": "lastNode"}},
			{"name": "out", "type": "code", "parameters": {"return": {"v": 1}}}], "connections": {"in": ["out"]}}`,
	})
	defer a.shutdown(context.Background())
	const runs = 5
	for range runs {
		res, err := http.Get("http://" + a.Addr() + "/webhook/hello")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("webhook: %d", res.StatusCode)
		}
	}
	res, err := http.Get("http://" + a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sample := func(name string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in /metrics:\n%s", name, body)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := sample("flowd_store_run_writes_total"); got != 2*runs {
		t.Errorf("flowd_store_run_writes_total = %v, want %d (a start and an end per run)", got, 2*runs)
	}
	if got := sample("flowd_store_commits_total"); got < 1 || got > 2*runs {
		t.Errorf("flowd_store_commits_total = %v, want 1 to %d", got, 2*runs)
	}
}
