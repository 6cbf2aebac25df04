package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// memStore is an in-memory engine.Store, engine.RunReader and StaticStore. It keeps copies,
// so the executor's changes to a run in flight never race with readers.
type memStore struct {
	mu       sync.Mutex
	runs     map[string]*engine.Run
	static   map[string]map[string]engine.StaticValue
	finished map[string]chan struct{}
	// failCreate, when set, is CreateRun's error.
	failCreate error
}

func newMemStore() *memStore {
	return &memStore{
		runs:     map[string]*engine.Run{},
		static:   map[string]map[string]engine.StaticValue{},
		finished: map[string]chan struct{}{},
	}
}

func copyRun(r *engine.Run) *engine.Run {
	c := *r
	c.Nodes = slices.Clone(r.Nodes)
	return &c
}

// doneLocked returns the channel closed when the run finishes.
func (s *memStore) doneLocked(id string) chan struct{} {
	ch, ok := s.finished[id]
	if !ok {
		ch = make(chan struct{})
		s.finished[id] = ch
	}
	return ch
}

func (s *memStore) CreateRun(_ context.Context, r *engine.Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCreate != nil {
		return s.failCreate
	}
	if _, ok := s.runs[r.ID]; ok {
		return fmt.Errorf("create run %s: already stored", r.ID)
	}
	s.runs[r.ID] = copyRun(r)
	return nil
}

func (s *memStore) FinishRun(_ context.Context, r *engine.Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runs[r.ID]; !ok {
		return fmt.Errorf("finish run %s: %w", r.ID, engine.ErrNotFound)
	}
	s.runs[r.ID] = copyRun(r)
	close(s.doneLocked(r.ID))
	return nil
}

func (s *memStore) GetRun(_ context.Context, id string) (*engine.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return nil, fmt.Errorf("get run %s: %w", id, engine.ErrNotFound)
	}
	return copyRun(r), nil
}

func (s *memStore) ListRuns(_ context.Context, f engine.RunFilter) ([]engine.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	ids := slices.Sorted(maps.Keys(s.runs))
	slices.Reverse(ids)
	out := []engine.Run{}
	for _, id := range ids {
		r := s.runs[id]
		if f.FlowID != "" && r.FlowID != f.FlowID || f.Status != "" && string(r.Status) != f.Status || f.Before != "" && id >= f.Before {
			continue
		}
		c := *r
		c.Nodes = nil
		out = append(out, c)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (s *memStore) LoadStatic(_ context.Context, flowID string) (map[string]engine.StaticValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.static[flowID]), nil
}

func (s *memStore) CommitStatic(_ context.Context, c *engine.StaticCommit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := s.static[c.FlowID]
	for k, v := range c.Reads {
		if data[k].Version != v {
			return fmt.Errorf("commit static data of %s: key %q: %w", c.FlowID, k, engine.ErrStaticConflict)
		}
	}
	if data == nil {
		data = map[string]engine.StaticValue{}
		s.static[c.FlowID] = data
	}
	for i, ch := range c.Changes {
		old := data[ch.Key]
		c.Changes[i].Before = old.Value
		if ch.Deleted {
			delete(data, ch.Key)
			continue
		}
		data[ch.Key] = engine.StaticValue{Value: ch.After, Version: old.Version + 1}
	}
	return nil
}

func (s *memStore) Static(ctx context.Context, flowID string) (map[string]any, error) {
	loaded, _ := s.LoadStatic(ctx, flowID)
	out := map[string]any{}
	for k, v := range loaded {
		out[k] = v.Value
	}
	return out, nil
}

func (s *memStore) ResetStatic(_ context.Context, flowID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.static, flowID)
	return nil
}

func (s *memStore) CountRuns(_ context.Context, flowID string, since time.Time) (engine.RunCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c engine.RunCounts
	floor := engine.FirstRunIDAt(since)
	for id, r := range s.runs {
		if r.FlowID != flowID || id < floor {
			continue
		}
		c.Total++
		if r.Status == engine.StatusError || r.Status == engine.StatusCrashed {
			c.Failed++
		}
	}
	return c, nil
}

// put stores a finished run as it is, for pages that show runs no executor made.
func (s *memStore) put(r *engine.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[r.ID] = copyRun(r)
}

// waitRun blocks until the run has finished and returns its record.
func (s *memStore) waitRun(t *testing.T, id string) *engine.Run {
	t.Helper()
	s.mu.Lock()
	done := s.doneLocked(id)
	s.mu.Unlock()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("run %s did not finish", id)
	}
	r, err := s.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fixedFlows is a FlowSource that always gives one set.
type fixedFlows struct{ set *FlowSet }

func (f fixedFlows) Current() *FlowSet { return f.set }

// fixedSchedules says every schedule trigger fires next at one time.
type fixedSchedules struct{ next time.Time }

func (f fixedSchedules) NextFire(flowID, trigger string) (time.Time, bool) {
	return f.next, flowID == "sched"
}

// loadFlows loads flow sources keyed by file name, as flowd serve would.
func loadFlows(t testing.TB, srcs map[string]string) []*engine.Flow {
	t.Helper()
	ld := &engine.Loader{Registry: nodes.NewRegistry()}
	var flows []*engine.Flow
	for _, name := range slices.Sorted(maps.Keys(srcs)) {
		f, probs := ld.Load(path.Join("flows", name), []byte(srcs[name]))
		if f == nil {
			t.Fatalf("load %s:\n%v", name, probs)
		}
		flows = append(flows, f)
	}
	return flows
}

type envOptions struct {
	maxBody   int64
	health    func(context.Context) error
	cluster   func() ClusterStatus
	schedules ScheduleInfo
	auth      *Auth
	// separateMetrics keeps /metrics off the main router.
	separateMetrics bool
	// wrap, when set, wraps the server's handler in the test server.
	wrap func(http.Handler) http.Handler
}

// env is a server with a real executor and an in-memory store, behind httptest.
type env struct {
	store   *memStore
	metrics *Metrics
	events  *Events
	server  *Server
	url     string
}

func newEnv(t testing.TB, srcs map[string]string, opts envOptions) *env {
	t.Helper()
	set, err := NewFlowSet(loadFlows(t, srcs))
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	m := NewMetrics()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	events := NewEvents()
	x := &engine.Executor{Store: events.Store(m.Store(store)), Logger: log, Env: map[string]string{}}
	srv := New(Config{
		Flows: fixedFlows{set}, Runner: x, Runs: store, Static: store, Schedules: opts.schedules,
		Health: opts.health, Cluster: opts.cluster, Metrics: m, Events: events, MaxBodyBytes: opts.maxBody, Logger: log,
		Auth: opts.auth, SeparateMetrics: opts.separateMetrics,
	})
	h := srv.Handler()
	if opts.wrap != nil {
		h = opts.wrap(h)
	}
	hs := httptest.NewUnstartedServer(h)
	hs.Config.RegisterOnShutdown(srv.CloseStreams)
	hs.Start()
	t.Cleanup(func() {
		srv.CloseStreams()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &env{store: store, metrics: m, events: events, server: srv, url: hs.URL}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body, numbers as json.Number.
func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("status %d: body %q is not a JSON object: %v", r.status, r.body, err)
	}
	return v
}

func (e *env) do(t *testing.T, method, target, contentType string, body io.Reader, header ...string) *response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: data}
}

func (e *env) get(t *testing.T, target string) *response {
	t.Helper()
	return e.do(t, http.MethodGet, target, "", nil)
}

func (e *env) postJSON(t *testing.T, target, body string) *response {
	t.Helper()
	return e.do(t, http.MethodPost, target, "application/json", strings.NewReader(body))
}

// decode unmarshals the body into v.
func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d: body %q: %v", r.status, r.body, err)
	}
}
