package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

var t0 = time.Date(2026, 11, 27, 6, 10, 57, 123456000, time.UTC)

// testRun is a running run of flowID started i seconds after t0.
func testRun(id, flowID string, i int) *engine.Run {
	return &engine.Run{
		ID:          id,
		FlowID:      flowID,
		FlowName:    "Flow " + flowID,
		FlowVersion: "v1",
		Trigger:     "start",
		Mode:        "manual",
		Status:      engine.StatusRunning,
		StartedAt:   t0.Add(time.Duration(i) * time.Second),
	}
}

func finishedRun(id string) *engine.Run {
	r := testRun(id, "token-refresh", 0)
	r.Status = engine.StatusError
	r.FinishedAt = t0.Add(1500 * time.Millisecond)
	r.Error = `node "check": boom`
	r.ErrorNode = "check"
	r.Nodes = []engine.NodeRun{
		{
			Seq: 0, Node: "start", Type: "webhook", Status: engine.StatusSuccess,
			StartedAt: t0, DurationMicros: 12, Tries: 1,
			Input:        []engine.Item{{"body": map[string]any{"user": "ann", "n": int64(3)}}},
			Output:       [][]engine.Item{{{"body": map[string]any{"user": "ann", "n": int64(3)}}}},
			Ports:        []string{"main"},
			InputCount:   1,
			OutputCounts: []int{1},
		},
		{
			Seq: 1, Node: "save", Type: "code", Status: engine.StatusSuccess,
			StartedAt: t0.Add(time.Millisecond), DurationMicros: 345, Tries: 2,
			Input:        []engine.Item{{"a": 1.5, "b": "<&>"}, {"a": int64(-2)}},
			Output:       [][]engine.Item{{{"ok": true}, {"ok": nil}}},
			Ports:        []string{"main"},
			InputCount:   2,
			OutputCounts: []int{2},
			Static: []engine.StaticChange{
				{Key: "token", Before: nil, After: map[string]any{"v": "abc", "exp": int64(99)}},
				{Key: "old", Before: 2.5, Deleted: true},
			},
		},
		{
			Seq: 2, Node: "check", Type: "if", Status: engine.StatusError,
			StartedAt: t0.Add(2 * time.Millisecond), DurationMicros: 7, Tries: 1,
			Input:        []engine.Item{{"ok": true}},
			Output:       [][]engine.Item{nil, {}},
			Ports:        []string{"true", "false"},
			InputCount:   1,
			OutputCounts: []int{0, 0},
			Error:        "boom",
			Recheck:      true,
		},
		{
			Seq: 3, Node: "never", Type: "noop", Status: engine.StatusCanceled,
			StartedAt: t0.Add(3 * time.Millisecond), Ports: []string{}, OutputCounts: []int{},
		},
	}
	return r
}

func TestRunRoundTrip(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := finishedRun("01RUN")

	started := *r
	started.Status, started.FinishedAt, started.Error, started.ErrorNode, started.Nodes =
		engine.StatusRunning, time.Time{}, "", "", nil
	if err := s.CreateRun(ctx, &started); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	started.Nodes = []engine.NodeRun{}
	if !reflect.DeepEqual(got, &started) {
		t.Errorf("running run:\ngot  %+v\nwant %+v", got, &started)
	}

	if err := s.FinishRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("finished run:\ngot  %+v\nwant %+v", got, r)
		for i := range min(len(got.Nodes), len(r.Nodes)) {
			if !reflect.DeepEqual(got.Nodes[i], r.Nodes[i]) {
				t.Errorf("node %d:\ngot  %#v\nwant %#v", i, got.Nodes[i], r.Nodes[i])
			}
		}
	}
	if loc := got.StartedAt.Location(); loc != time.UTC {
		t.Errorf("StartedAt in %v, want UTC", loc)
	}

	t.Run("finishing again replaces the nodes", func(t *testing.T) {
		r2 := *r
		r2.Status, r2.Nodes = engine.StatusSuccess, r.Nodes[:1]
		if err := s.FinishRun(ctx, &r2); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != engine.StatusSuccess || len(got.Nodes) != 1 {
			t.Errorf("got status %s with %d nodes, want success with 1", got.Status, len(got.Nodes))
		}
	})

	t.Run("payloads are compact and stored once", func(t *testing.T) {
		var doc string
		if err := s.r.QueryRowContext(ctx,
			`SELECT nodes FROM runs WHERE id = ?`, r.ID).Scan(&doc); err != nil {
			t.Fatal(err)
		}
		// The webhook's output repeats its input.
		if want := `"i":[{"body":{"n":3,"user":"ann"}}],"o":[0]`; !strings.Contains(doc, want) {
			t.Errorf("stored nodes %s, want them to hold %s", doc, want)
		}
	})
}

func TestRunNotFound(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, err := s.GetRun(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRun = %v, want ErrNotFound", err)
	}
	if err := s.FinishRun(ctx, finishedRun("nope")); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishRun = %v, want ErrNotFound", err)
	}
	if err := s.CreateRun(ctx, testRun("dup", "f", 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx, testRun("dup", "f", 0)); err == nil {
		t.Error("creating a run twice succeeded")
	}
}

func TestPayloadTruncation(t *testing.T) {
	big := func(n int, tag string) []engine.Item {
		items := make([]engine.Item, n)
		for i := range items {
			items[i] = engine.Item{"i": int64(i), "tag": tag, "pad": strings.Repeat("x", 1000)}
		}
		return items
	}
	tests := []struct {
		name      string
		input     []engine.Item
		output    [][]engine.Item
		truncated bool
	}{
		{"small", big(3, "in"), [][]engine.Item{big(2, "a")}, false},
		{"huge input", big(1000, "in"), [][]engine.Item{big(2, "a")}, true},
		{"huge output shares the cap between ports", big(1, "in"), [][]engine.Item{big(1000, "a"), big(3, "b"), nil, big(1000, "c")}, true},
		{"one item over the cap", []engine.Item{{"s": strings.Repeat("y", MaxPayloadBytes)}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			ctx := context.Background()
			r := testRun("run", "f", 0)
			if err := s.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			nr := engine.NodeRun{Node: "n", Type: "code", Status: engine.StatusSuccess, StartedAt: t0,
				Input: tt.input, InputCount: len(tt.input), Output: tt.output}
			for _, p := range tt.output {
				nr.OutputCounts = append(nr.OutputCounts, len(p))
				nr.Ports = append(nr.Ports, "p")
			}
			r.Status, r.FinishedAt, r.Nodes = engine.StatusSuccess, t0, []engine.NodeRun{nr}
			if err := s.FinishRun(ctx, r); err != nil {
				t.Fatal(err)
			}

			var inLen, outLen int
			if err := s.r.QueryRowContext(ctx, `
SELECT COALESCE(length(json_extract(nodes, '$[0].i')), 0), COALESCE(length(json_extract(nodes, '$[0].o')), 0)
FROM runs`).Scan(&inLen, &outLen); err != nil {
				t.Fatal(err)
			}
			if inLen > MaxPayloadBytes || outLen > MaxPayloadBytes {
				t.Errorf("stored %d input and %d output bytes, cap %d", inLen, outLen, MaxPayloadBytes)
			}

			got, err := s.GetRun(ctx, "run")
			if err != nil {
				t.Fatal(err)
			}
			g := got.Nodes[0]
			if g.Truncated != tt.truncated {
				t.Errorf("Truncated = %v, want %v", g.Truncated, tt.truncated)
			}
			if g.InputCount != nr.InputCount || !slices.Equal(g.OutputCounts, nr.OutputCounts) {
				t.Errorf("counts %d %v, want %d %v", g.InputCount, g.OutputCounts, nr.InputCount, nr.OutputCounts)
			}
			checkPrefix(t, "input", g.Input, tt.input, tt.truncated)
			if len(g.Output) != len(tt.output) {
				t.Fatalf("%d output ports, want %d", len(g.Output), len(tt.output))
			}
			for i := range tt.output {
				checkPrefix(t, fmt.Sprintf("output %d", i), g.Output[i], tt.output[i], tt.truncated)
				if (g.Output[i] == nil) != (tt.output[i] == nil) {
					t.Errorf("output %d: nil %v, want nil %v", i, g.Output[i] == nil, tt.output[i] == nil)
				}
			}
			if tt.name == "huge output shares the cap between ports" {
				if len(g.Output[1]) != 3 || len(g.Output[0]) == 0 || len(g.Output[3]) == 0 {
					t.Errorf("kept %d, %d, %d items of ports 0, 1, 3; want some of each and all 3 of port 1",
						len(g.Output[0]), len(g.Output[1]), len(g.Output[3]))
				}
			}
		})
	}
}

// checkPrefix checks that got is a leading part of want: all of it unless truncated.
func checkPrefix(t *testing.T, what string, got, want []engine.Item, truncated bool) {
	t.Helper()
	if len(got) > len(want) || (!truncated && len(got) != len(want)) {
		t.Errorf("%s: %d items stored of %d", what, len(got), len(want))
		return
	}
	if len(got) > 0 && !reflect.DeepEqual(got, want[:len(got)]) {
		t.Errorf("%s: stored items are not the leading ones", what)
	}
}

func TestListRuns(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var all []*engine.Run // in creation order
	for i := range 30 {
		flow := []string{"alpha", "beta", "gamma"}[i%3]
		r := testRun(engine.NewRunID(t0.Add(time.Duration(i)*time.Millisecond)), flow, i)
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if i%4 != 0 {
			r.Status, r.FinishedAt = engine.StatusSuccess, r.StartedAt.Add(time.Second)
			r.Nodes = finishedRun(r.ID).Nodes
			if err := s.FinishRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, r)
	}
	newestFirst := func(keep func(*engine.Run) bool) []string {
		var ids []string
		for i := len(all) - 1; i >= 0; i-- {
			if keep(all[i]) {
				ids = append(ids, all[i].ID)
			}
		}
		return ids
	}

	tests := []struct {
		name   string
		filter engine.RunFilter
		want   []string
	}{
		{"all", engine.RunFilter{}, newestFirst(func(*engine.Run) bool { return true })},
		{"by flow", engine.RunFilter{FlowID: "beta"}, newestFirst(func(r *engine.Run) bool { return r.FlowID == "beta" })},
		{"by status", engine.RunFilter{Status: "running"}, newestFirst(func(r *engine.Run) bool { return r.Status == engine.StatusRunning })},
		{"by flow and status", engine.RunFilter{FlowID: "alpha", Status: "success"}, newestFirst(func(r *engine.Run) bool {
			return r.FlowID == "alpha" && r.Status == engine.StatusSuccess
		})},
		{"unknown flow", engine.RunFilter{FlowID: "nope"}, nil},
		{"before", engine.RunFilter{Before: all[10].ID}, newestFirst(func(r *engine.Run) bool { return r.ID < all[10].ID })},
		{"limit", engine.RunFilter{Limit: 5}, newestFirst(func(*engine.Run) bool { return true })[:5]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListRuns(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.ID)
				if r.Nodes != nil {
					t.Errorf("run %s listed with nodes", r.ID)
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ids\ngot  %v\nwant %v", ids, tt.want)
			}
		})
	}

	t.Run("listed fields", func(t *testing.T) {
		got, err := s.ListRuns(ctx, engine.RunFilter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := *all[len(all)-1]
		want.Nodes = nil
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})

	for _, f := range []engine.RunFilter{{Limit: 7}, {Limit: 1}, {FlowID: "gamma", Limit: 3}} {
		t.Run(fmt.Sprintf("paging %+v", f), func(t *testing.T) {
			var ids []string
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatal("paging does not end")
				}
				page, err := s.ListRuns(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > f.Limit {
					t.Fatalf("page of %d, limit %d", len(page), f.Limit)
				}
				if len(page) == 0 {
					break
				}
				for _, r := range page {
					ids = append(ids, r.ID)
				}
				f.Before = page[len(page)-1].ID
			}
			want := newestFirst(func(r *engine.Run) bool { return f.FlowID == "" || r.FlowID == f.FlowID })
			if !slices.Equal(ids, want) {
				t.Errorf("paged ids\ngot  %v\nwant %v", ids, want)
			}
		})
	}
}

func TestMarkCrashed(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for i, id := range []string{"a", "b", "c"} {
		if err := s.CreateRun(ctx, testRun(id, "f", i)); err != nil {
			t.Fatal(err)
		}
	}
	done := finishedRun("b")
	done.Status = engine.StatusSuccess
	if err := s.FinishRun(ctx, done); err != nil {
		t.Fatal(err)
	}

	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	n, err := s.MarkCrashed(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("MarkCrashed = %d, want 2", n)
	}
	for _, id := range []string{"a", "c"} {
		r, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != engine.StatusCrashed || !r.FinishedAt.Equal(at) ||
			r.Error != "flowd stopped while the run was in progress" {
			t.Errorf("run %s: %s at %v, %q", id, r.Status, r.FinishedAt, r.Error)
		}
	}
	if r, err := s.GetRun(ctx, "b"); err != nil || r.Status != engine.StatusSuccess {
		t.Errorf("finished run b: %v, %v", r, err)
	}
	if n, err := s.MarkCrashed(ctx, at); err != nil || n != 0 {
		t.Errorf("second MarkCrashed = %d, %v; want 0", n, err)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flowd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r := finishedRun("01KEEP")
	if err := s.CreateRun(ctx, testRun(r.ID, r.FlowID, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitStatic(ctx, &engine.StaticCommit{FlowID: "f",
		Changes: []engine.StaticChange{{Key: "k", After: []any{int64(1), "two"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("run after reopen:\ngot  %+v\nwant %+v", got, r)
	}
	static, err := s.LoadStatic(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]engine.StaticValue{"k": {Value: []any{int64(1), "two"}, Version: 1}}
	if !reflect.DeepEqual(static, want) {
		t.Errorf("static data after reopen = %#v, want %#v", static, want)
	}
}
