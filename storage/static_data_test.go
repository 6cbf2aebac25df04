package storage

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/flowd/flowd/engine"
)

// set commits blind writes (no reads) of the given keys and fails the test on error.
func set(t *testing.T, s *SQLite, flowID string, changes ...engine.StaticChange) *engine.StaticCommit {
	t.Helper()
	c := &engine.StaticCommit{FlowID: flowID, Changes: changes}
	if err := s.CommitStatic(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func load(t *testing.T, s *SQLite, flowID string) map[string]engine.StaticValue {
	t.Helper()
	got, err := s.LoadStatic(context.Background(), flowID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestStaticRoundTrip(t *testing.T) {
	s := openTest(t)
	tests := []struct {
		name string
		in   any
		want any // nil: same as in
	}{
		{"string", "a <b> & c", nil},
		{"empty string", "", nil},
		{"true", true, nil},
		{"null", nil, nil},
		{"int", int64(42), nil},
		{"negative int", int64(-7), nil},
		{"big int keeps precision", int64(1<<62 + 1), nil},
		{"float", 1.5, nil},
		{"tiny float", 1e-300, nil},
		{"integral float literal", 3.0, int64(3)},
		{"array", []any{int64(1), 2.5, "x", nil, false}, nil},
		{"nested", map[string]any{
			"token":   "abc",
			"expires": int64(1767225600),
			"ratio":   0.25,
			"scopes":  []any{"read", "write"},
			"meta":    map[string]any{"n": int64(2), "deep": []any{map[string]any{"x": 1.25}}},
			"empty":   map[string]any{},
			"none":    []any{},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set(t, s, "flow", engine.StaticChange{Key: tt.name, After: tt.in})
			got, ok := load(t, s, "flow")[tt.name]
			if !ok {
				t.Fatal("key missing after commit")
			}
			want := tt.want
			if want == nil {
				want = tt.in
			}
			if !reflect.DeepEqual(got.Value, want) {
				t.Errorf("loaded %#v, want %#v", got.Value, want)
			}
			if got.Version != 1 {
				t.Errorf("version %d, want 1", got.Version)
			}
		})
	}
	t.Run("other flow is empty", func(t *testing.T) {
		got, err := s.Static(context.Background(), "other")
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || len(got) != 0 {
			t.Errorf("Static = %#v, want an empty map", got)
		}
	})
}

func TestStaticVersionsAndBefore(t *testing.T) {
	s := openTest(t)
	steps := []struct {
		name        string
		change      engine.StaticChange
		wantBefore  any
		wantValue   any // when not deleted
		wantVersion int64
		wantAbsent  bool
	}{
		{"create", engine.StaticChange{Key: "k", After: "a"}, nil, "a", 1, false},
		{"update", engine.StaticChange{Key: "k", After: int64(2)}, "a", int64(2), 2, false},
		{"update nested", engine.StaticChange{Key: "k", After: map[string]any{"x": int64(1)}}, int64(2), map[string]any{"x": int64(1)}, 3, false},
		{"delete", engine.StaticChange{Key: "k", Deleted: true}, map[string]any{"x": int64(1)}, nil, 0, true},
		{"delete absent", engine.StaticChange{Key: "k", Deleted: true}, nil, nil, 0, true},
		{"re-create continues the version", engine.StaticChange{Key: "k", After: "b"}, nil, "b", 5, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			c := set(t, s, "flow", st.change)
			if !reflect.DeepEqual(c.Changes[0].Before, st.wantBefore) {
				t.Errorf("Before = %#v, want %#v", c.Changes[0].Before, st.wantBefore)
			}
			got, ok := load(t, s, "flow")["k"]
			if st.wantAbsent {
				if ok {
					t.Errorf("key present after delete: %#v", got)
				}
				return
			}
			if !ok || !reflect.DeepEqual(got.Value, st.wantValue) || got.Version != st.wantVersion {
				t.Errorf("loaded %#v (present %v), want value %#v version %d", got, ok, st.wantValue, st.wantVersion)
			}
		})
	}

	t.Run("several changes of one key in one commit", func(t *testing.T) {
		c := set(t, s, "flow",
			engine.StaticChange{Key: "m", After: int64(1)},
			engine.StaticChange{Key: "m", After: int64(2)},
			engine.StaticChange{Key: "m", Deleted: true},
			engine.StaticChange{Key: "m", After: int64(3)},
		)
		wantBefore := []any{nil, int64(1), int64(2), nil}
		for i, ch := range c.Changes {
			if !reflect.DeepEqual(ch.Before, wantBefore[i]) {
				t.Errorf("change %d: Before = %#v, want %#v", i, ch.Before, wantBefore[i])
			}
		}
		got := load(t, s, "flow")["m"]
		if got.Value != int64(3) || got.Version != 4 {
			t.Errorf("loaded %#v, want 3 at version 4", got)
		}
	})
}

func TestStaticConflict(t *testing.T) {
	tests := []struct {
		name     string
		reads    map[string]int64
		readAll  bool
		conflict bool
	}{
		{"fresh reads", map[string]int64{"a": 2, "b": 1}, false, false},
		{"stale version", map[string]int64{"a": 1}, false, true},
		{"read absent, now present", map[string]int64{"b": 0}, false, true},
		{"read present, now deleted", map[string]int64{"gone": 1}, false, true},
		{"read absent, still absent", map[string]int64{"gone": 0, "never": 0}, false, false},
		{"read version of a key never set", map[string]int64{"never": 1}, false, true},
		{"blind write", nil, false, false},
		{"read all, all seen", map[string]int64{"a": 2, "b": 1}, true, false},
		{"read all, a key added since", map[string]int64{"a": 2}, true, true},
		{"read all, a key deleted since", map[string]int64{"a": 2, "b": 1, "gone": 1}, true, true},
		{"read all of nothing", map[string]int64{}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			set(t, s, "flow",
				engine.StaticChange{Key: "a", After: int64(1)},
				engine.StaticChange{Key: "b", After: "x"},
				engine.StaticChange{Key: "gone", After: true},
			)
			set(t, s, "flow",
				engine.StaticChange{Key: "a", After: int64(2)},
				engine.StaticChange{Key: "gone", Deleted: true},
			)
			set(t, s, "other", engine.StaticChange{Key: "z", After: int64(1)}) // never in the way
			before := load(t, s, "flow")

			c := &engine.StaticCommit{
				FlowID:  "flow",
				Reads:   tt.reads,
				ReadAll: tt.readAll,
				Changes: []engine.StaticChange{
					{Key: "a", After: int64(100)},
					{Key: "new", After: "n"},
				},
			}
			err := s.CommitStatic(context.Background(), c)
			if !tt.conflict {
				if err != nil {
					t.Fatalf("CommitStatic = %v, want success", err)
				}
				if got := load(t, s, "flow")["a"]; got.Value != int64(100) || got.Version != 3 {
					t.Errorf("a = %#v after commit, want 100 at version 3", got)
				}
				return
			}
			if !errors.Is(err, engine.ErrStaticConflict) {
				t.Fatalf("CommitStatic = %v, want ErrStaticConflict", err)
			}
			if after := load(t, s, "flow"); !reflect.DeepEqual(after, before) {
				t.Errorf("a failed commit changed the data:\nbefore %#v\nafter  %#v", before, after)
			}
			for _, ch := range c.Changes {
				if ch.Before != nil {
					t.Errorf("a failed commit filled Before of %q: %#v", ch.Key, ch.Before)
				}
			}
		})
	}
}

func TestStaticConflictMessage(t *testing.T) {
	s := openTest(t)
	set(t, s, "flow", engine.StaticChange{Key: "token", After: "a"})
	err := s.CommitStatic(context.Background(), &engine.StaticCommit{
		FlowID:  "flow",
		Reads:   map[string]int64{"token": 0},
		Changes: []engine.StaticChange{{Key: "token", After: "b"}},
	})
	want := `commit static data of flow: key "token": static data changed concurrently`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestResetStatic(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	set(t, s, "flow",
		engine.StaticChange{Key: "a", After: int64(1)},
		engine.StaticChange{Key: "b", After: int64(2)},
	)
	set(t, s, "other", engine.StaticChange{Key: "a", After: int64(1)})
	seen := load(t, s, "flow")

	if err := s.ResetStatic(ctx, "flow"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Static(ctx, "flow"); err != nil || len(got) != 0 {
		t.Errorf("Static after reset = %#v, %v; want empty", got, err)
	}
	if got, err := s.Static(ctx, "other"); err != nil || !reflect.DeepEqual(got, map[string]any{"a": int64(1)}) {
		t.Errorf("reset touched another flow: %#v, %v", got, err)
	}

	// A node that read before the reset and re-creates a key must conflict.
	set(t, s, "flow", engine.StaticChange{Key: "a", After: int64(5)})
	err := s.CommitStatic(ctx, &engine.StaticCommit{
		FlowID:  "flow",
		Reads:   map[string]int64{"a": seen["a"].Version},
		Changes: []engine.StaticChange{{Key: "a", After: int64(2)}},
	})
	if !errors.Is(err, engine.ErrStaticConflict) {
		t.Errorf("commit on data read before the reset = %v, want ErrStaticConflict", err)
	}
}

// TestStaticConcurrentWriters runs many read-modify-write increments of one counter at once,
// each also writing its writer's own key, through one store and through two stores on one file
// (as two processes would). Every increment must land exactly once and no commit may fail with
// anything but a conflict — in particular not "database is locked".
func TestStaticConcurrentWriters(t *testing.T) {
	const writers, commits = 32, 50
	for _, stores := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d stores", stores), func(t *testing.T) {
			ctx := context.Background()
			first := openTest(t)
			all := []*SQLite{first}
			for range stores - 1 {
				s, err := Open(ctx, first.Path())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				all = append(all, s)
			}

			var (
				wg        sync.WaitGroup
				mu        sync.Mutex
				conflicts int
			)
			for g := range writers {
				s := all[g%len(all)]
				wg.Go(func() {
					for j := range commits {
						for {
							cur, err := s.LoadStatic(ctx, "flow")
							if err != nil {
								t.Errorf("writer %d: %v", g, err)
								return
							}
							counter := cur["counter"]
							n, _ := counter.Value.(int64)
							err = s.CommitStatic(ctx, &engine.StaticCommit{
								FlowID: "flow",
								Reads:  map[string]int64{"counter": counter.Version},
								Changes: []engine.StaticChange{
									{Key: "counter", After: n + 1},
									{Key: fmt.Sprintf("w%02d", g), After: int64(j)},
								},
							})
							if errors.Is(err, engine.ErrStaticConflict) {
								mu.Lock()
								conflicts++
								mu.Unlock()
								continue
							}
							if err != nil {
								t.Errorf("writer %d commit %d: %v", g, j, err)
								return
							}
							break
						}
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}

			got := load(t, first, "flow")
			if c := got["counter"]; c.Value != int64(writers*commits) || c.Version != writers*commits {
				t.Errorf("counter = %#v, want %d at version %d", c, writers*commits, writers*commits)
			}
			for g := range writers {
				k := fmt.Sprintf("w%02d", g)
				if v, ok := got[k]; !ok || v.Value != int64(commits-1) || v.Version != commits {
					t.Errorf("own key %s = %#v (present %v), want %d at version %d", k, v, ok, commits-1, commits)
				}
			}
			if len(got) != writers+1 {
				t.Errorf("%d keys, want %d", len(got), writers+1)
			}
			t.Logf("%d conflicts retried", conflicts)
		})
	}
}
