package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func order(r *Run) []string {
	var out []string
	for _, n := range r.Nodes {
		out = append(out, n.Node)
	}
	return out
}

func runFlow(t *testing.T, src string, items []Item) (*Run, *memStore) {
	t.Helper()
	store := newMemStore()
	x := &Executor{Store: store, Env: map[string]string{"GREETING": "hello"}, Logger: quiet}
	r, err := x.Run(context.Background(), mustLoad(t, src), RunRequest{Items: items})
	if err != nil {
		t.Fatal(err)
	}
	return r, store
}

func TestExecutorOrderIsDepthFirst(t *testing.T) {
	// t → split; true → a → c; false → b → c. c has two inputs and runs once per delivery.
	src := `{"nodes": [
		{"name": "t", "type": "trigger"},
		{"name": "split", "type": "split", "parameters": {"cond": "{{ $json.n % 2 == 0 }}"}},
		{"name": "a", "type": "pass"}, {"name": "b", "type": "pass"}, {"name": "c", "type": "pass"}
	], "connections": {
		"t": ["split"], "split": {"true": ["a"], "false": ["b"]}, "a": ["c"], "b": ["c"]
	}}`
	r, store := runFlow(t, src, []Item{{"n": int64(1)}, {"n": int64(2)}, {"n": int64(4)}})
	if r.Status != StatusSuccess {
		t.Fatalf("status %s: %s", r.Status, r.Error)
	}
	want := []string{"t", "split", "a", "c", "b", "c"}
	if got := order(r); !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	if got := r.Nodes[1].OutputCounts; !slices.Equal(got, []int{2, 1}) {
		t.Errorf("split output counts = %v, want [2 1]", got)
	}
	if n := r.Nodes[3].InputCount; n != 2 {
		t.Errorf("first delivery to c had %d items, want 2 (from a)", n)
	}
	if n := r.Nodes[5].InputCount; n != 1 {
		t.Errorf("second delivery to c had %d items, want 1 (from b)", n)
	}
	for i, n := range r.Nodes {
		if n.Seq != i {
			t.Errorf("node %d has seq %d", i, n.Seq)
		}
	}
	if len(store.finished) != 1 || store.finished[0].Status != StatusSuccess {
		t.Errorf("store has %d finished runs", len(store.finished))
	}
}

func TestExecutorEmptyOutputSchedulesNothing(t *testing.T) {
	src := `{"nodes": [
		{"name": "t", "type": "trigger"},
		{"name": "split", "type": "split", "parameters": {"cond": "{{ true }}"}},
		{"name": "yes", "type": "pass"}, {"name": "no", "type": "pass"}
	], "connections": {"t": ["split"], "split": {"true": ["yes"], "false": ["no"]}}}`
	r, _ := runFlow(t, src, nil)
	if got := order(r); !slices.Equal(got, []string{"t", "split", "yes"}) {
		t.Fatalf("order = %v", got)
	}
}

func TestExecutorErrors(t *testing.T) {
	tests := []struct {
		name       string
		node       string // the middle node's JSON
		items      []Item
		wantStatus RunStatus
		wantOrder  []string
		check      func(t *testing.T, r *Run)
	}{
		{
			name:       "stop fails the run",
			node:       `{"name": "m", "type": "fail"}`,
			wantStatus: StatusError,
			wantOrder:  []string{"t", "m"},
			check: func(t *testing.T, r *Run) {
				if r.ErrorNode != "m" || !strings.Contains(r.Error, `node "m" (fail): boom 1`) {
					t.Errorf("error = %q at %q", r.Error, r.ErrorNode)
				}
				if r.Nodes[1].Status != StatusError || r.Nodes[1].Error != "boom 1" {
					t.Errorf("node record = %+v", r.Nodes[1])
				}
			},
		},
		{
			name:       "retry until success",
			node:       `{"name": "m", "type": "fail", "parameters": {"times": 2}, "retryOnFail": true, "maxTries": 3, "waitBetweenTries": 1}`,
			wantStatus: StatusSuccess,
			wantOrder:  []string{"t", "m", "after"},
			check: func(t *testing.T, r *Run) {
				if r.Nodes[1].Tries != 3 {
					t.Errorf("tries = %d, want 3", r.Nodes[1].Tries)
				}
			},
		},
		{
			name:       "retries exhausted",
			node:       `{"name": "m", "type": "fail", "parameters": {"times": 5}, "retryOnFail": true, "maxTries": 2, "waitBetweenTries": "1ms"}`,
			wantStatus: StatusError,
			wantOrder:  []string{"t", "m"},
			check: func(t *testing.T, r *Run) {
				if r.Nodes[1].Tries != 2 || r.Nodes[1].Error != "boom 2" {
					t.Errorf("tries = %d, error %q", r.Nodes[1].Tries, r.Nodes[1].Error)
				}
			},
		},
		{
			name:       "continue passes items on with the error",
			node:       `{"name": "m", "type": "fail", "onError": "continue"}`,
			items:      []Item{{"a": int64(1)}},
			wantStatus: StatusSuccess,
			wantOrder:  []string{"t", "m", "after"},
			check: func(t *testing.T, r *Run) {
				got := r.Nodes[2].Input
				if len(got) != 1 || got[0]["error"] != "boom 1" || got[0]["a"] != int64(1) {
					t.Errorf("after got %v", got)
				}
				if r.Nodes[1].Status != StatusError {
					t.Errorf("failed node recorded as %s", r.Nodes[1].Status)
				}
			},
		},
		{
			name:       "errorOutput routes to the error port",
			node:       `{"name": "m", "type": "fail", "onError": "errorOutput"}`,
			wantStatus: StatusSuccess,
			wantOrder:  []string{"t", "m", "handler"},
			check: func(t *testing.T, r *Run) {
				if !slices.Equal(r.Nodes[1].Ports, []string{"main", "error"}) {
					t.Errorf("ports = %v", r.Nodes[1].Ports)
				}
			},
		},
		{
			name:       "failed items under stop fail the node",
			node:       `{"name": "m", "type": "failBad"}`,
			items:      []Item{{"bad": false}, {"bad": true}},
			wantStatus: StatusError,
			wantOrder:  []string{"t", "m"},
			check: func(t *testing.T, r *Run) {
				if !strings.Contains(r.Error, "item 1: bad item") {
					t.Errorf("error = %q", r.Error)
				}
			},
		},
		{
			name:       "failed items under errorOutput split",
			node:       `{"name": "m", "type": "failBad", "onError": "errorOutput"}`,
			items:      []Item{{"bad": false}, {"bad": true}, {"bad": false}},
			wantStatus: StatusSuccess,
			wantOrder:  []string{"t", "m", "after", "handler"},
			check: func(t *testing.T, r *Run) {
				if got := r.Nodes[1].OutputCounts; !slices.Equal(got, []int{2, 1}) {
					t.Errorf("output counts = %v", got)
				}
				if r.Nodes[3].Input[0]["error"] != "bad item" {
					t.Errorf("handler got %v", r.Nodes[3].Input)
				}
			},
		},
		{
			name:       "failed items under continue stay on the main port",
			node:       `{"name": "m", "type": "failBad", "onError": "continue"}`,
			items:      []Item{{"bad": true}, {"bad": false}},
			wantStatus: StatusSuccess,
			wantOrder:  []string{"t", "m", "after"},
			check: func(t *testing.T, r *Run) {
				if r.Nodes[2].InputCount != 2 {
					t.Errorf("after got %d items", r.Nodes[2].InputCount)
				}
			},
		},
		{
			name:       "panic is a node failure",
			node:       `{"name": "m", "type": "panic"}`,
			wantStatus: StatusError,
			wantOrder:  []string{"t", "m"},
			check: func(t *testing.T, r *Run) {
				if !strings.Contains(r.Error, "panic: kaboom") {
					t.Errorf("error = %q", r.Error)
				}
			},
		},
		{
			name:       "disabled node passes items through",
			node:       `{"name": "m", "type": "fail", "disabled": true}`,
			items:      []Item{{"x": "y"}},
			wantStatus: StatusSuccess,
			wantOrder:  []string{"t", "m", "after"},
			check: func(t *testing.T, r *Run) {
				if r.Nodes[1].Status != StatusDisabled || r.Nodes[2].Input[0]["x"] != "y" {
					t.Errorf("disabled node record %+v", r.Nodes[1])
				}
			},
		},
		{
			name:       "node timeout",
			node:       `{"name": "m", "type": "block", "timeout": "20ms"}`,
			wantStatus: StatusError,
			wantOrder:  []string{"t", "m"},
			check: func(t *testing.T, r *Run) {
				if !strings.Contains(r.Error, "node timed out after 20ms") {
					t.Errorf("error = %q", r.Error)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// t → m → after; with errorOutput, m's error port → handler (else handler is
			// unreachable, which is only a warning).
			conns := `"m": ["after"]`
			if strings.Contains(tt.node, "errorOutput") {
				conns = `"m": {"main": ["after"], "error": ["handler"]}`
			}
			src := fmt.Sprintf(`{"nodes": [{"name": "t", "type": "trigger"}, %s,
				{"name": "after", "type": "pass"}, {"name": "handler", "type": "pass"}],
				"connections": {"t": ["m"], %s}}`, tt.node, conns)
			r, _ := runFlow(t, src, tt.items)
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %s (%s), want %s", r.Status, r.Error, tt.wantStatus)
			}
			if got := order(r); !slices.Equal(got, tt.wantOrder) {
				t.Fatalf("order = %v, want %v", got, tt.wantOrder)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestExecutorContinueOutputOfTheType(t *testing.T) {
	// split sends failed items to its false port under onError continue, like n8n's If.
	src := `{"nodes": [{"name": "t", "type": "trigger"},
		{"name": "split", "type": "split", "onError": "continue", "parameters": {"cond": "{{ 10 / $json.n > 1 }}"}},
		{"name": "yes", "type": "pass"}, {"name": "no", "type": "pass"}],
		"connections": {"t": ["split"], "split": {"true": ["yes"], "false": ["no"]}}}`
	r, _ := runFlow(t, src, []Item{{"n": int64(2)}, {"n": "x"}})
	if r.Status != StatusSuccess || !slices.Equal(r.Nodes[1].OutputCounts, []int{1, 1}) {
		t.Fatalf("status %s counts %v", r.Status, r.Nodes[1].OutputCounts)
	}
	if got := r.Nodes[3].Input[0]; got["n"] != "x" || got["error"] == nil {
		t.Fatalf("false port got %v", got)
	}
}

func TestExecutorFlowTimeout(t *testing.T) {
	src := `{"settings": {"timeout": "30ms"}, "nodes": [{"name": "t", "type": "trigger"}, {"name": "b", "type": "block"}],
		"connections": {"t": ["b"]}}`
	r, store := runFlow(t, src, nil)
	if r.Status != StatusError || r.Error != "run timed out after 30ms" || r.ErrorNode != "b" {
		t.Fatalf("run = %s %q at %q", r.Status, r.Error, r.ErrorNode)
	}
	if len(store.finished) != 1 {
		t.Fatal("timed-out run not recorded")
	}
}

func TestExecutorCancelStopsRunAndLeaksNothing(t *testing.T) {
	src := `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "b", "type": "block"}, {"name": "after", "type": "pass"}],
		"connections": {"t": ["b"], "b": ["after"]}}`
	f := mustLoad(t, src)
	store := newMemStore()
	x := &Executor{Store: store, Logger: quiet}
	before := runtime.NumGoroutine()

	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), startedKey{}, started))
	done := make(chan *Run)
	go func() {
		r, err := x.Run(ctx, f, RunRequest{})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	<-started
	cancel()
	r := <-done
	if r.Status != StatusCanceled || r.ErrorNode != "b" {
		t.Fatalf("run = %s at %q, want canceled at b", r.Status, r.ErrorNode)
	}
	if got := order(r); !slices.Equal(got, []string{"t", "b"}) {
		t.Fatalf("order = %v", got)
	}
	if len(store.finished) != 1 || store.finished[0].Status != StatusCanceled {
		t.Fatal("canceled run not recorded")
	}
	// Goroutines return to the baseline; allow the runtime a moment to retire them.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after the run, %d before", n, before)
	}
}

func TestStaticWritesCommitWhenTheNodeSucceeds(t *testing.T) {
	// The token is written by "set"; a later node fails; the write stays.
	src := `{"id": "f", "nodes": [{"name": "t", "type": "trigger"},
		{"name": "set", "type": "set", "parameters": {"key": "token", "value": "{{ 'tok-' + $env.GREETING }}"}},
		{"name": "read", "type": "emit", "parameters": {"items": [{"seen": "{{ $static.token }}"}]}},
		{"name": "boom", "type": "fail"}],
		"connections": {"t": ["set"], "set": ["read"], "read": ["boom"]}}`
	r, store := runFlow(t, src, nil)
	if r.Status != StatusError {
		t.Fatalf("status %s", r.Status)
	}
	if v, _ := store.get("f", "token"); v != "tok-hello" {
		t.Fatalf("static token = %v", v)
	}
	if got := r.Nodes[2].Output[0][0]["seen"]; got != "tok-hello" {
		t.Errorf("a later node read %v", got)
	}
	if ch := r.Nodes[1].Static; len(ch) != 1 || ch[0].Key != "token" || ch[0].After != "tok-hello" || ch[0].Before != nil {
		t.Errorf("recorded static changes = %+v", ch)
	}

	// Writing the same value again commits nothing.
	commits := store.commits
	x := &Executor{Store: store, Env: map[string]string{"GREETING": "hello"}, Logger: quiet}
	if _, err := x.Run(context.Background(), mustLoad(t, src), RunRequest{}); err != nil {
		t.Fatal(err)
	}
	if store.commits != commits {
		t.Errorf("an unchanged value was committed again")
	}
}

func TestStaticWritesOfAFailedNodeAreDropped(t *testing.T) {
	src := `{"id": "f", "nodes": [{"name": "t", "type": "trigger"},
		{"name": "set", "type": "set", "parameters": {"key": "k", "value": "{{ fail('no') }}"}}],
		"connections": {"t": ["set"]}}`
	r, store := runFlow(t, src, nil)
	if r.Status != StatusError {
		t.Fatalf("status %s", r.Status)
	}
	if _, ok := store.get("f", "k"); ok {
		t.Fatal("a failed node's write was committed")
	}
}

func TestConcurrentIncrementsLoseNothing(t *testing.T) {
	// Each run reads the counter and writes it plus one; runs race. Conflicting commits are
	// retried on fresh data, so the final count is exact.
	src := `{"id": "f", "nodes": [{"name": "t", "type": "trigger"},
		{"name": "inc", "type": "set", "parameters": {"key": "count", "value": "{{ ($static.count ?? 0) + 1 }}"}}],
		"connections": {"t": ["inc"]}}`
	f := mustLoad(t, src)
	store := newMemStore()
	x := &Executor{Store: store, Logger: quiet}
	const runs = 200
	var wg sync.WaitGroup
	for range runs {
		wg.Go(func() {
			r, err := x.Run(context.Background(), f, RunRequest{})
			if err != nil || r.Status != StatusSuccess {
				t.Errorf("run: %v %v", err, r)
			}
		})
	}
	wg.Wait()
	if v, _ := store.get("f", "count"); v != int64(runs) {
		t.Fatalf("count = %v, want %d", v, runs)
	}
}

func TestRunUnknownTrigger(t *testing.T) {
	f := mustLoad(t, `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "p", "type": "pass"}], "connections": {"t": ["p"]}}`)
	_, err := (&Executor{Logger: quiet}).Run(context.Background(), f, RunRequest{Trigger: "p"})
	if !errors.Is(err, ErrNoTrigger) {
		t.Fatalf("err = %v", err)
	}
}

func TestRunIDsSortInCreationOrder(t *testing.T) {
	now := time.Now()
	prev := NewRunID(now)
	for i := range 1000 {
		// Same millisecond, then a clock step back: ids must still grow.
		at := now
		if i == 500 {
			at = now.Add(-time.Second)
		}
		id := NewRunID(at)
		if len(id) != 26 || id <= prev {
			t.Fatalf("id %d %q not after %q", i, id, prev)
		}
		prev = id
	}
}

func TestFirstRunIDAtBoundsRunsStartedSince(t *testing.T) {
	// NewRunID's ids are its millisecond then a counter; build them directly, since NewRunID
	// itself never goes back in time within one process.
	idAt := func(ms int64, seq uint64) string {
		var v [16]byte
		binary.BigEndian.PutUint64(v[0:8], uint64(ms)<<16|seq&0xFFFF)
		binary.BigEndian.PutUint64(v[8:16], seq)
		return encodeCrockford(v)
	}
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	floor := FirstRunIDAt(t0)
	if got := idAt(t0.UnixMilli()-1, math.MaxUint64); got >= floor {
		t.Errorf("largest id a millisecond earlier %q sorts at or after the floor %q", got, floor)
	}
	for _, ms := range []int64{t0.UnixMilli(), t0.UnixMilli() + 1, t0.Add(24 * time.Hour).UnixMilli()} {
		if got := idAt(ms, 0); got < floor {
			t.Errorf("id at %d %q sorts before the floor %q", ms, got, floor)
		}
	}
	if now := NewRunID(time.Now()); now < FirstRunIDAt(time.Now().Add(-time.Second)) || now >= FirstRunIDAt(time.Now().Add(time.Hour)) {
		t.Errorf("a fresh id %q is outside the floors around now", now)
	}
}

func TestStartedIsCalledOnceTheRunIsRecorded(t *testing.T) {
	f := mustLoad(t, `{"nodes": [{"name": "t", "type": "trigger"}]}`)
	store := newMemStore()
	var seen *Run
	r, err := (&Executor{Store: store, Logger: quiet}).Run(context.Background(), f, RunRequest{Started: func(r *Run) {
		store.mu.Lock()
		stored := store.runs[r.ID]
		store.mu.Unlock()
		if stored == nil || stored.Status != StatusRunning || len(r.Nodes) != 0 {
			t.Errorf("Started saw stored %+v, nodes %d", stored, len(r.Nodes))
		}
		seen = r
	}})
	if err != nil || seen == nil || seen.ID != r.ID {
		t.Fatalf("started %v, err %v", seen, err)
	}
}

// queuedStore is a memStore whose start records are queued (RunQueuer): waiting for one
// says so on waiting, and it is committed once the test releases it.
type queuedStore struct {
	*memStore
	waiting chan struct{} // closed by the first wait
	release chan struct{}
	once    sync.Once
}

func (q *queuedStore) QueueCreateRun(ctx context.Context, r *Run) (func() error, error) {
	// The same outcome each call, as RunQueuer asks.
	return sync.OnceValue(func() error {
		q.once.Do(func() { close(q.waiting) })
		<-q.release
		return q.memStore.CreateRun(ctx, r)
	}), nil
}

// A node that acts outside flowd runs only once its run's start is on record, so that a crash
// after it acted leaves the run behind.
func TestSideEffectNodeWaitsForStartRecord(t *testing.T) {
	reg := testRegistry(t)
	acted := make(chan struct{})
	err := reg.Register(&NodeType{Name: "act", SideEffects: true, New: func(*NodeConfig) (Node, error) {
		return NodeFunc(func(_ context.Context, in *Input, out *Output) error {
			close(acted)
			out.Emit(0, in.Items...)
			return nil
		}), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	src := `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "p", "type": "pass"}, {"name": "a", "type": "act"}],
		"connections": {"t": ["p"], "p": ["a"]}}`
	f, probs := (&Loader{Registry: reg}).Load("test.json", []byte(src))
	if f == nil {
		t.Fatal(probs)
	}
	store := &queuedStore{memStore: newMemStore(), waiting: make(chan struct{}), release: make(chan struct{})}
	x := &Executor{Store: store, Logger: quiet}
	done := make(chan *Run, 1)
	go func() {
		r, err := x.Run(context.Background(), f, RunRequest{})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	// Without the wait, the run reaches "a" and acts, and waits for its record only at its end.
	select {
	case <-store.waiting:
	case <-acted:
		t.Fatal("the side-effect node ran before its run's start was recorded")
	}
	close(store.release)
	if r := <-done; r.Status != StatusSuccess || len(r.Nodes) != 3 {
		t.Fatalf("status %s, %d node executions", r.Status, len(r.Nodes))
	}
	select {
	case <-acted:
	default:
		t.Fatal("the side-effect node never ran")
	}
}

// $node reads what an earlier node of the run output, $flow and $run what they describe:
// runs build these only for flows whose expressions read them, which these do.
func TestExecutorNodeViews(t *testing.T) {
	src := `{"id": "views", "nodes": [
		{"name": "t", "type": "trigger"},
		{"name": "first", "type": "emit", "parameters": {"items": [{"token": "abc"}, {"token": "def"}]}},
		{"name": "later", "type": "emit", "parameters": {"items": [{"json": "{{ $node['first'].json.token }}", "count": "{{ len($node['first'].items) }}",
			"flow": "{{ $flow.id }}", "mode": "{{ $run.mode }}"}]}}
	], "connections": {"t": ["first"], "first": ["later"]}}`
	r, _ := runFlow(t, src, nil)
	last := r.Nodes[len(r.Nodes)-1]
	if last.Node != "later" || len(last.Output[0]) == 0 {
		t.Fatalf("nodes %v", order(r))
	}
	if got := last.Output[0][0]; got["json"] != "abc" || got["count"] != int64(2) || got["flow"] != "views" || got["mode"] != "manual" {
		t.Errorf("later saw %v, want json abc, count 2, flow views, mode manual", got)
	}
}
