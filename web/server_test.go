package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowd/flowd/engine"
)

func TestHealthz(t *testing.T) {
	tests := []struct {
		name       string
		health     func(context.Context) error
		cluster    func() ClusterStatus
		wantStatus int
		wantBody   string
	}{
		{"no check", nil, nil, 200, `{"status":"ok"}`},
		{"healthy", func(context.Context) error { return nil }, nil, 200, `{"status":"ok"}`},
		{"database down", func(context.Context) error { return errors.New("ping database: disk I/O error") }, nil, 503,
			`{"error":"ping database: disk I/O error","status":"degraded"}`},
		{"cluster agrees", nil, func() ClusterStatus { return ClusterStatus{Instance: "a", Instances: 3, ScheduleLeader: true} }, 200,
			`{"cluster":{"instance":"a","instances":3,"scheduleLeader":true,"flowsDiffer":[]},"status":"ok"}`},
		{"cluster flows differ", nil, func() ClusterStatus {
			return ClusterStatus{Instance: "a", Instances: 2, FlowsDiffer: []FlowDiff{{Flow: "f", Versions: map[string]string{"a": "v1", "b": ""}}}}
		}, 200,
			`{"cluster":{"instance":"a","instances":2,"scheduleLeader":false,"flowsDiffer":[{"flow":"f","versions":{"a":"v1","b":""}}]},"status":"ok"}`},
		{"cluster database down", func(context.Context) error { return errors.New("ping database: connection refused") },
			func() ClusterStatus { return ClusterStatus{Instance: "a", Instances: 1} }, 503,
			`{"cluster":{"instance":"a","instances":1,"scheduleLeader":false,"flowsDiffer":[]},"error":"ping database: connection refused","status":"degraded"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, envOptions{health: tt.health, cluster: tt.cluster})
			res := e.get(t, "/healthz")
			if got := strings.TrimSpace(string(res.body)); res.status != tt.wantStatus || got != tt.wantBody {
				t.Fatalf("status %d body %s", res.status, got)
			}
		})
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, maps.Collect(func(yield func(string, string) bool) {
		for k, v := range webhookFlows {
			yield(k, v)
		}
		yield("count.json", apiFlows["count.json"])
	}), envOptions{})

	res := e.postJSON(t, "/webhook/orders/1", `{}`)
	e.store.waitRun(t, res.json(t)["runId"].(string))
	if res := e.get(t, "/webhook/fail"); res.status != 500 {
		t.Fatalf("fail: %d", res.status)
	}
	if res := e.get(t, "/webhook/nope"); res.status != 404 {
		t.Fatalf("nope: %d", res.status)
	}
	if res := e.postJSON(t, "/api/flows/count/run", ""); res.status != 200 {
		t.Fatalf("count: %d", res.status)
	}

	res = e.get(t, "/metrics")
	if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d type %q", res.status, res.header.Get("Content-Type"))
	}
	text := string(res.body)
	for _, want := range []string{
		"# TYPE flowd_runs_total counter\n",
		`flowd_runs_total{flow="orders",status="success"} 1` + "\n",
		`flowd_runs_total{flow="fail",status="error"} 1` + "\n",
		`flowd_runs_total{flow="count",status="success"} 1` + "\n",
		"# TYPE flowd_run_duration_seconds histogram\n",
		`flowd_run_duration_seconds_bucket{flow="orders",le="+Inf"} 1` + "\n",
		`flowd_run_duration_seconds_count{flow="fail"} 1` + "\n",
		"# TYPE flowd_node_duration_seconds histogram\n",
		`flowd_node_duration_seconds_count{flow="orders",type="code"} 1` + "\n",
		`flowd_node_duration_seconds_count{flow="orders",type="webhook"} 1` + "\n",
		`flowd_static_writes_total{flow="count"} 1` + "\n",
		`flowd_webhook_requests_total{status="200"} 1` + "\n",
		`flowd_webhook_requests_total{status="404"} 1` + "\n",
		`flowd_webhook_requests_total{status="500"} 1` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Count(text, "# TYPE flowd_runs_total ") != 1 {
		t.Errorf("family metadata repeated:\n%s", text)
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

func TestMetricsLabelEscaping(t *testing.T) {
	m := NewMetrics()
	st := m.Store(newMemStore())
	ctx := context.Background()
	weird := "a\"b\\c\nd\xff"
	now := time.Now()
	run := &engine.Run{ID: "r1", FlowID: weird, Status: engine.StatusRunning, StartedAt: now}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status, run.FinishedAt = engine.StatusSuccess, now.Add(1500*time.Millisecond)
	run.Nodes = []engine.NodeRun{{Node: "n", Type: `x"y`, DurationMicros: 2500}}
	if err := st.FinishRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	commit := &engine.StaticCommit{FlowID: weird, Changes: []engine.StaticChange{{Key: "a", After: int64(1)}, {Key: "b", After: "x"}}}
	if err := st.CommitStatic(ctx, commit); err != nil {
		t.Fatal(err)
	}
	stale := &engine.StaticCommit{FlowID: weird, Reads: map[string]int64{"a": 7}, Changes: []engine.StaticChange{{Key: "a", After: int64(2)}}}
	if err := st.CommitStatic(ctx, stale); !errors.Is(err, engine.ErrStaticConflict) {
		t.Fatalf("stale commit: %v", err)
	}
	if values, err := st.LoadStatic(ctx, weird); err != nil || values["a"].Value != int64(1) {
		t.Fatalf("LoadStatic not forwarded: %v %v", values, err)
	}

	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	text := buf.String()
	esc := `a\"b\\c\nd` + "\uFFFD"
	for _, want := range []string{
		`flowd_runs_total{flow="` + esc + `",status="success"} 1`,
		`flowd_run_duration_seconds_sum{flow="` + esc + `"} 1.5`,
		`flowd_node_duration_seconds_bucket{flow="` + esc + `",type="x\"y",le="0.005"} 1`,
		`flowd_static_writes_total{flow="` + esc + `"} 2`,
		`flowd_static_conflicts_total{flow="` + esc + `"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		sample := line[:strings.LastIndexByte(line, ' ')]
		if err := metrics.ValidateMetric(sample); err != nil {
			t.Errorf("line %q: %v", line, err)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

func TestRecovererAnswersJSON(t *testing.T) {
	store := newMemStore()
	m := NewMetrics()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := New(Config{Flows: panicFlows{}, Runner: &engine.Executor{Store: store}, Runs: store, Static: store, Metrics: m, Logger: log})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &env{store: store, metrics: m, server: srv, url: hs.URL}
	for _, target := range []string{"/api/flows", "/webhook/x"} {
		t.Run(target, func(t *testing.T) {
			res := e.get(t, target)
			if got := strings.TrimSpace(string(res.body)); res.status != 500 || got != `{"error":"internal error","code":500}` {
				t.Fatalf("status %d body %s", res.status, got)
			}
		})
	}
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), `flowd_webhook_requests_total{status="500"} 1`) {
		t.Errorf("panicking webhook request not counted:\n%s", buf.String())
	}
}

// blocker is an HTTP server whose requests wait until released or cancelled by the client.
type blocker struct {
	url     string
	started chan struct{} // receives once per request that arrived
	release func()
}

func newBlocker(t *testing.T) *blocker {
	released := make(chan struct{})
	var once sync.Once
	b := &blocker{started: make(chan struct{}, 16), release: func() { once.Do(func() { close(released) }) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.started <- struct{}{}
		select {
		case <-released:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok": true}`)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		b.release()
		srv.Close()
	})
	b.url = srv.URL
	return b
}

// await receives from ch or fails the test after a generous bound.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func slowFlows(url string) map[string]string {
	return map[string]string{
		"slow.json": `{"nodes": [
			{"name": "Webhook", "type": "webhook", "parameters": {"path": "slow", "httpMethod": "POST"}},
			{"name": "Call", "type": "httpRequest", "parameters": {"url": "` + url + `"}}],
		 "connections": {"Webhook": ["Call"]}}`,
		"slowlast.json": `{"nodes": [
			{"name": "Webhook", "type": "webhook", "parameters": {"path": "slowlast", "httpMethod": "POST", "responseMode": "lastNode"}},
			{"name": "Call", "type": "httpRequest", "parameters": {"url": "` + url + `"}}],
		 "connections": {"Webhook": ["Call"]}}`,
	}
}

func TestShutdownWaitsForRuns(t *testing.T) {
	b := newBlocker(t)
	e := newEnv(t, slowFlows(b.url), envOptions{})
	res := e.postJSON(t, "/webhook/slow", `{}`)
	if res.status != 200 {
		t.Fatalf("status %d body %s", res.status, res.body)
	}
	id := res.header.Get(runIDHeader)
	await(t, b.started, "the run's HTTP call")

	errc := make(chan error, 1)
	go func() { errc <- e.server.Shutdown(context.Background()) }()
	select {
	case err := <-errc:
		t.Fatalf("Shutdown returned (%v) while a run was in flight", err)
	default:
	}
	b.release()
	if err := await(t, errc, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Shutdown waited: the run is already recorded as finished.
	run, err := e.store.GetRun(context.Background(), id)
	if err != nil || run.Status != engine.StatusSuccess || run.Nodes[1].Output[0][0]["ok"] != true {
		t.Fatalf("run %+v, %v", run, err)
	}

	for _, tt := range []struct{ name, target string }{{"webhook", "/webhook/slow"}, {"manual run", "/api/flows/slow/run"}} {
		t.Run(tt.name+" after shutdown", func(t *testing.T) {
			res := e.postJSON(t, tt.target, `{}`)
			if body := res.json(t); res.status != 503 || body["error"] != "flowd is shutting down; try again later" {
				t.Fatalf("status %d body %s", res.status, res.body)
			}
		})
	}
}

func TestShutdownCancelsRunsAtDeadline(t *testing.T) {
	b := newBlocker(t)
	e := newEnv(t, slowFlows(b.url), envOptions{})
	var ids []string
	for range 2 {
		res := e.postJSON(t, "/webhook/slow", `{}`)
		ids = append(ids, res.header.Get(runIDHeader))
		await(t, b.started, "the run's HTTP call")
	}

	ctx, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	err := e.server.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, id := range ids {
		run, err := e.store.GetRun(context.Background(), id)
		if err != nil || run.Status != engine.StatusCanceled || run.Error != "run canceled" || run.ErrorNode != "Call" {
			t.Errorf("run %+v, %v", run, err)
		}
	}
}

func TestLastNodeRunOutlivesItsClient(t *testing.T) {
	b := newBlocker(t)
	handled := make(chan struct{}, 4)
	e := newEnv(t, slowFlows(b.url), envOptions{wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			if strings.HasPrefix(r.URL.Path, "/webhook/") {
				handled <- struct{}{}
			}
		})
	}})

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/webhook/slowlast", strings.NewReader(`{}`))
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	await(t, b.started, "the run's HTTP call")
	cancel()
	if err := await(t, errc, "the client"); !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
	await(t, handled, "the webhook handler to return")

	b.release()
	runs, _ := e.store.ListRuns(context.Background(), engine.RunFilter{FlowID: "slowlast"})
	if len(runs) != 1 {
		t.Fatalf("runs %v", runs)
	}
	if run := e.store.waitRun(t, runs[0].ID); run.Status != engine.StatusSuccess {
		t.Fatalf("run %+v", run)
	}
	var buf bytes.Buffer
	e.metrics.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), `flowd_webhook_requests_total{status="499"} 1`) {
		t.Errorf("metrics:\n%s", buf.String())
	}
}
