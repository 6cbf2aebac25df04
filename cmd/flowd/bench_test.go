package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWebhookTokenFlow is flowd's own part of a webhook request: its middleware, the
// token flow's run (steady state: the token is valid) and the wait for the run's record in
// SQLite, in process, without the HTTP connection, on 64 goroutines. It is the CPU per run
// that make bench's end-to-end load pays on top of what a bare handler pays.
func BenchmarkWebhookTokenFlow(b *testing.B) {
	b.Setenv("FLOWD_SECRET_CLIENT_ID", "bench-client")
	b.Setenv("FLOWD_SECRET_CLIENT_SECRET", "bench-secret")
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token": "bench-token-4f1c9a", "token_type": "Bearer", "expires_in": 86400}`))
	}))
	defer tokens.Close()
	b.Setenv("TOKEN_URL", tokens.URL)

	var sf secretFlags
	sec, _, err := sf.load(false)
	if err != nil {
		b.Fatal(err)
	}
	cfg := serveConfig{Addr: "127.0.0.1:0", DB: filepath.Join(b.TempDir(), "flowd.db"),
		FlowsDir: filepath.Join("..", "..", "flows"), MaxBodyBytes: 1 << 20, ShutdownTimeout: 10 * time.Second,
		Secrets: sec.store, Redactor: sec.redactor}
	a, err := startApp(b.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer a.shutdown(b.Context())
	h := a.http.Handler
	call := func() {
		r := httptest.NewRequest(http.MethodPost, "/webhook/token-refresh", strings.NewReader(""))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "bench-token-4f1c9a") {
			b.Fatalf("answer %d: %s", w.Code, w.Body)
		}
	}
	call() // the token's refresh

	b.SetParallelism(32) // 64 goroutines on 2 cores, as make bench's c=64
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			call()
		}
	})
	b.StopTimer()
	// The process's CPU time per run, and the cores it kept busy: a run that waits for
	// its group commit while a core idles shows in the second, not the first.
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(cpu)/float64(b.Elapsed()), "cores")
}

// cpuTime is the CPU time, user and system, this process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
