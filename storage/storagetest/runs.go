package storagetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

var runTests = []test{
	{"round trip", func(t *testing.T, open Opener) {
		s := open(t)
		want := finishedRun("r1")
		created := *want
		created.Status, created.FinishedAt, created.Error, created.ErrorNode, created.Nodes = engine.StatusRunning, time.Time{}, "", "", nil
		if err := s.CreateRun(ctx(t), &created); err != nil {
			t.Fatal(err)
		}
		got := getRun(t, s, "r1")
		created.Nodes = []engine.NodeRun{}
		if !reflect.DeepEqual(got, &created) {
			t.Errorf("running run read back as\n%#v\nwant\n%#v", got, &created)
		}
		if err := s.FinishRun(ctx(t), want); err != nil {
			t.Fatal(err)
		}
		if got := getRun(t, s, "r1"); !reflect.DeepEqual(got, want) {
			t.Errorf("finished run read back as\n%#v\nwant\n%#v", got, want)
		}
	}},
	{"queued create keeps order", func(t *testing.T, open Opener) {
		s := open(t)
		r := finishedRun("q1")
		start := *r
		start.Status, start.FinishedAt, start.Nodes = engine.StatusRunning, time.Time{}, nil
		wait, err := s.QueueCreateRun(ctx(t), &start)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx(t), r); err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatalf("second wait: %v", err)
		}
		if got := getRun(t, s, "q1"); got.Status != engine.StatusError || len(got.Nodes) != len(r.Nodes) {
			t.Errorf("run = %s with %d nodes, want the finished record", got.Status, len(got.Nodes))
		}
	}},
	{"not found and duplicates", func(t *testing.T, open Opener) {
		s := open(t)
		if _, err := s.GetRun(ctx(t), "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetRun of an unknown run: %v; want ErrNotFound", err)
		}
		if err := s.FinishRun(ctx(t), finishedRun("nope")); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("FinishRun of an unknown run: %v; want ErrNotFound", err)
		}
		if err := s.CreateRun(ctx(t), runningRun("dup", "f", t0)); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRun(ctx(t), runningRun("dup", "f", t0)); err == nil {
			t.Error("creating a run twice succeeded")
		}
	}},
	{"list pages and filters", func(t *testing.T, open Opener) {
		s := open(t)
		var all []string // newest first
		for i := range 7 {
			at := t0.Add(time.Duration(i) * time.Second)
			flow := []string{"a", "b"}[i%2]
			r := runningRun(testID(at), flow, at)
			create(t, s, r)
			if i%3 == 0 {
				r.Status, r.FinishedAt = engine.StatusError, at.Add(time.Millisecond)
				if err := s.FinishRun(ctx(t), r); err != nil {
					t.Fatal(err)
				}
			}
			all = append([]string{r.ID}, all...)
		}
		var paged []string
		before := ""
		for range 10 {
			page := list(t, s, engine.RunFilter{Before: before, Limit: 3})
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				if r.Nodes != nil {
					t.Errorf("ListRuns returned nodes of %s", r.ID)
				}
				paged = append(paged, r.ID)
			}
			before = page[len(page)-1].ID
		}
		if !slices.Equal(paged, all) {
			t.Errorf("pages gave %v, want %v", paged, all)
		}
		for _, f := range []engine.RunFilter{{FlowID: "a"}, {Status: "error"}, {FlowID: "b", Status: "running"}, {FlowID: "a", Before: all[2]}} {
			var want []string
			for _, id := range all {
				r := getRun(t, s, id)
				if (f.FlowID == "" || r.FlowID == f.FlowID) && (f.Status == "" || string(r.Status) == f.Status) && (f.Before == "" || id < f.Before) {
					want = append(want, id)
				}
			}
			var got []string
			for _, r := range list(t, s, f) {
				got = append(got, r.ID)
			}
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("ListRuns(%+v) = %v, want %v (not empty)", f, got, want)
			}
		}
	}},
	{"list limit", func(t *testing.T, open Opener) {
		s := open(t)
		for i := range 60 {
			create(t, s, runningRun(testID(t0.Add(time.Duration(i)*time.Millisecond)), "f", t0))
		}
		if n := len(list(t, s, engine.RunFilter{})); n != 50 {
			t.Errorf("default page has %d runs, want 50", n)
		}
		if n := len(list(t, s, engine.RunFilter{Limit: 55})); n != 55 {
			t.Errorf("Limit 55 gave %d runs", n)
		}
	}},
	{"count", func(t *testing.T, open Opener) {
		s := open(t)
		now := time.Now().UTC()
		for i, st := range []engine.RunStatus{engine.StatusSuccess, engine.StatusError, engine.StatusCrashed, engine.StatusRunning} {
			at := now.Add(-time.Duration(i) * time.Minute)
			r := runningRun(testID(at), "f", at)
			create(t, s, r)
			if st != engine.StatusRunning {
				r.Status, r.FinishedAt = st, at
				if err := s.FinishRun(ctx(t), r); err != nil {
					t.Fatal(err)
				}
			}
		}
		old := now.Add(-48 * time.Hour)
		create(t, s, runningRun(testID(old), "f", old))
		create(t, s, runningRun(testID(now), "other", now))
		c, err := s.CountRuns(ctx(t), "f", now.Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if c != (engine.RunCounts{Total: 4, Failed: 2}) {
			t.Errorf("CountRuns = %+v, want 4 runs of which 2 failed", c)
		}
	}},
	{"big payloads are truncated", func(t *testing.T, open Opener) {
		s := open(t)
		items := make([]engine.Item, 1000)
		for i := range items {
			items[i] = engine.Item{"i": int64(i), "pad": strings.Repeat("x", 1000)}
		}
		r := runningRun("big", "f", t0)
		create(t, s, r)
		r.Status, r.FinishedAt = engine.StatusSuccess, t0.Add(time.Second)
		r.Nodes = []engine.NodeRun{{Node: "n", Type: "code", Status: engine.StatusSuccess, StartedAt: t0, Tries: 1,
			Input: items, InputCount: len(items), Output: [][]engine.Item{items[:2]}, OutputCounts: []int{2}, Ports: []string{"main"}}}
		if err := s.FinishRun(ctx(t), r); err != nil {
			t.Fatal(err)
		}
		g := getRun(t, s, "big").Nodes[0]
		if !g.Truncated || g.InputCount != 1000 || len(g.Input) == 0 || len(g.Input) >= 1000 {
			t.Fatalf("stored input: truncated %v, count %d, %d items; want a truncated prefix counting 1000", g.Truncated, g.InputCount, len(g.Input))
		}
		if len(g.Input) > storage.MaxPayloadBytes/1000 {
			t.Errorf("kept %d items of 1 kB, more than the %d byte cap", len(g.Input), storage.MaxPayloadBytes)
		}
		if !reflect.DeepEqual(g.Input, items[:len(g.Input)]) || !reflect.DeepEqual(g.Output[0], items[:2]) {
			t.Error("stored items differ from the leading items")
		}
	}},
	{"mark crashed", func(t *testing.T, open Opener) {
		s := open(t)
		create(t, s, runningRun("running", "f", t0))
		done := runningRun("done", "f", t0)
		create(t, s, done)
		done.Status, done.FinishedAt = engine.StatusSuccess, t0.Add(time.Second)
		if err := s.FinishRun(ctx(t), done); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Hour)
		n, err := s.MarkCrashed(ctx(t), at)
		if err != nil || n != 1 {
			t.Fatalf("MarkCrashed = %d, %v; want 1", n, err)
		}
		r := getRun(t, s, "running")
		if r.Status != engine.StatusCrashed || !r.FinishedAt.Equal(at) || r.Error == "" {
			t.Errorf("crashed run: %s at %v, error %q", r.Status, r.FinishedAt, r.Error)
		}
		if getRun(t, s, "done").Status != engine.StatusSuccess {
			t.Error("MarkCrashed changed a finished run")
		}
	}},
}

// idSeq numbers the ids testID makes.
var idSeq atomic.Uint64

// testID is a run id in ULID layout for a run started at at, unique in the process.
// engine.NewRunID cannot make ids for past times: its ids only ever grow.
func testID(at time.Time) string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	id := []byte(engine.FirstRunIDAt(at))
	for i, n := len(id)-1, idSeq.Add(1); n > 0; i, n = i-1, n>>5 {
		id[i] = crockford[n&31]
	}
	return string(id)
}

func runningRun(id, flowID string, at time.Time) *engine.Run {
	return &engine.Run{ID: id, FlowID: flowID, FlowName: "Flow " + flowID, FlowVersion: "v1",
		Trigger: "start", Mode: "manual", Status: engine.StatusRunning, StartedAt: at}
}

// finishedRun is a failed run with node executions of every shape the record has.
func finishedRun(id string) *engine.Run {
	r := runningRun(id, "token-refresh", t0)
	r.Status, r.FinishedAt = engine.StatusError, t0.Add(1500*time.Millisecond)
	r.Error, r.ErrorNode = `node "check": boom`, "check"
	r.Nodes = []engine.NodeRun{
		{Seq: 0, Node: "start", Type: "webhook", Status: engine.StatusSuccess, StartedAt: t0, DurationMicros: 12, Tries: 1,
			Input:  []engine.Item{{"body": map[string]any{"user": "ann", "n": int64(3)}}},
			Output: [][]engine.Item{{{"body": map[string]any{"user": "ann", "n": int64(3)}}}},
			Ports:  []string{"main"}, InputCount: 1, OutputCounts: []int{1}},
		{Seq: 1, Node: "save", Type: "code", Status: engine.StatusSuccess, StartedAt: t0.Add(time.Millisecond), DurationMicros: 345, Tries: 2,
			Input:  []engine.Item{{"a": 1.5, "b": "<&> ünï"}, {"a": int64(-2)}},
			Output: [][]engine.Item{{{"ok": true}, {"ok": nil}}},
			Ports:  []string{"main"}, InputCount: 2, OutputCounts: []int{2},
			Static: []engine.StaticChange{
				{Key: "token", Before: nil, After: map[string]any{"v": "abc", "exp": int64(99)}},
				{Key: "old", Before: 2.5, Deleted: true},
			}},
		{Seq: 2, Node: "check", Type: "if", Status: engine.StatusError, StartedAt: t0.Add(2 * time.Millisecond), DurationMicros: 7, Tries: 1,
			Input: []engine.Item{{"ok": true}}, Output: [][]engine.Item{nil, {}}, Ports: []string{"true", "false"},
			InputCount: 1, OutputCounts: []int{0, 0}, Error: "boom", Recheck: true},
		{Seq: 3, Node: "never", Type: "noop", Status: engine.StatusCanceled, StartedAt: t0.Add(3 * time.Millisecond),
			Ports: []string{}, OutputCounts: []int{}},
	}
	return r
}

func create(t *testing.T, s engine.RunRecorder, r *engine.Run) {
	t.Helper()
	if err := s.CreateRun(ctx(t), r); err != nil {
		t.Fatal(err)
	}
}

func getRun(t *testing.T, s engine.RunReader, id string) *engine.Run {
	t.Helper()
	r, err := s.GetRun(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func list(t *testing.T, s engine.RunReader, f engine.RunFilter) []engine.Run {
	t.Helper()
	runs, err := s.ListRuns(ctx(t), f)
	if err != nil {
		t.Fatal(fmt.Errorf("ListRuns(%+v): %w", f, err))
	}
	return runs
}
