package storagetest

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

var staticTests = []test{
	{"empty flow", func(t *testing.T, open Opener) {
		s := open(t)
		got, err := s.LoadStatic(ctx(t), "none")
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("LoadStatic of a flow without data = %v, %v; want an empty map", got, err)
		}
		plain, err := s.Static(ctx(t), "none")
		if err != nil || plain == nil || len(plain) != 0 {
			t.Fatalf("Static of a flow without data = %v, %v; want an empty map", plain, err)
		}
	}},
	{"versions and before values", func(t *testing.T, open Opener) {
		s := open(t)
		c := set("f", map[string]int64{"token": 0}, "token", map[string]any{"v": "a", "exp": int64(99)})
		mustCommit(t, s, c)
		if c.Changes[0].Before != nil {
			t.Errorf("Before of a new key = %v, want nil", c.Changes[0].Before)
		}
		want := map[string]engine.StaticValue{"token": {Value: map[string]any{"v": "a", "exp": int64(99)}, Version: 1}}
		checkStatic(t, s, "f", want)

		c = set("f", map[string]int64{"token": 1}, "token", 2.5)
		c.Changes = append(c.Changes, engine.StaticChange{Key: "n", After: int64(1) << 60})
		mustCommit(t, s, c)
		if !reflect.DeepEqual(c.Changes[0].Before, map[string]any{"v": "a", "exp": int64(99)}) {
			t.Errorf("Before = %#v, want the replaced value", c.Changes[0].Before)
		}
		checkStatic(t, s, "f", map[string]engine.StaticValue{
			"token": {Value: 2.5, Version: 2},
			"n":     {Value: int64(1) << 60, Version: 1},
		})
		plain, err := s.Static(ctx(t), "f")
		if err != nil || !reflect.DeepEqual(plain, map[string]any{"token": 2.5, "n": int64(1) << 60}) {
			t.Errorf("Static = %v, %v", plain, err)
		}
		checkStatic(t, s, "other", map[string]engine.StaticValue{})
	}},
	{"conflict writes nothing", func(t *testing.T, open Opener) {
		s := open(t)
		mustCommit(t, s, set("f", nil, "a", "1"))
		mustCommit(t, s, set("f", nil, "b", "1"))
		stale := &engine.StaticCommit{FlowID: "f", Reads: map[string]int64{"a": 1, "b": 0},
			Changes: []engine.StaticChange{{Key: "a", After: "2"}, {Key: "c", After: "new"}}}
		err := s.CommitStatic(ctx(t), stale)
		if !errors.Is(err, engine.ErrStaticConflict) || !strings.Contains(err.Error(), `"b"`) {
			t.Fatalf("commit over a changed key: %v; want ErrStaticConflict naming b", err)
		}
		if stale.Changes[0].Before != nil {
			t.Errorf("a failed commit filled Before: %v", stale.Changes[0].Before)
		}
		checkStatic(t, s, "f", map[string]engine.StaticValue{"a": {Value: "1", Version: 1}, "b": {Value: "1", Version: 1}})
	}},
	{"read all conflicts with any new key", func(t *testing.T, open Opener) {
		s := open(t)
		mustCommit(t, s, set("f", nil, "a", "1"))
		c := set("f", map[string]int64{"a": 1}, "a", "2")
		c.ReadAll = true
		mustCommit(t, s, c)
		mustCommit(t, s, set("f", nil, "z", "new"))
		c = set("f", map[string]int64{"a": 2}, "a", "3")
		c.ReadAll = true
		if err := s.CommitStatic(ctx(t), c); !errors.Is(err, engine.ErrStaticConflict) {
			t.Fatalf("ReadAll commit with an unread key present: %v; want ErrStaticConflict", err)
		}
	}},
	{"delete keeps the version growing", func(t *testing.T, open Opener) {
		s := open(t)
		mustCommit(t, s, set("f", nil, "k", "v1"))
		del := &engine.StaticCommit{FlowID: "f", Reads: map[string]int64{"k": 1},
			Changes: []engine.StaticChange{{Key: "k", Deleted: true}, {Key: "absent", Deleted: true}}}
		mustCommit(t, s, del)
		if del.Changes[0].Before != "v1" || del.Changes[1].Before != nil {
			t.Errorf("Before of deletes = %v, %v; want v1, nil", del.Changes[0].Before, del.Changes[1].Before)
		}
		checkStatic(t, s, "f", map[string]engine.StaticValue{})
		mustCommit(t, s, set("f", map[string]int64{"k": 0}, "k", "v2"))
		loaded := checkStatic(t, s, "f", nil)
		if v := loaded["k"].Version; v <= 1 {
			t.Errorf("re-created key's version = %d, want above the deleted one's", v)
		}
		// A node that read the first value must not commit over the second.
		if err := s.CommitStatic(ctx(t), set("f", map[string]int64{"k": 1}, "k", "v3")); !errors.Is(err, engine.ErrStaticConflict) {
			t.Fatalf("commit on the deleted key's version: %v; want ErrStaticConflict", err)
		}
	}},
	{"concurrent writers lose no update", func(t *testing.T, open Opener) {
		s := open(t)
		const writers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for range writers {
			wg.Go(func() {
				for range each {
					if err := increment(t, s, "f", "n"); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		checkStatic(t, s, "f", map[string]engine.StaticValue{"n": {Value: int64(writers * each), Version: writers * each}})
	}},
	{"reset", func(t *testing.T, open Opener) {
		s := open(t)
		mustCommit(t, s, set("f", nil, "a", "1"))
		mustCommit(t, s, set("g", nil, "a", "kept"))
		if err := s.ResetStatic(ctx(t), "f"); err != nil {
			t.Fatal(err)
		}
		checkStatic(t, s, "f", map[string]engine.StaticValue{})
		checkStatic(t, s, "g", map[string]engine.StaticValue{"a": {Value: "kept", Version: 1}})
		if err := s.CommitStatic(ctx(t), set("f", map[string]int64{"a": 1}, "a", "2")); !errors.Is(err, engine.ErrStaticConflict) {
			t.Fatalf("commit on data read before a reset: %v; want ErrStaticConflict", err)
		}
	}},
	{"each and rewrite", func(t *testing.T, open Opener) {
		s := open(t)
		mustCommit(t, s, set("f", nil, "a", "x"))
		mustCommit(t, s, set("f", nil, "b", int64(2)))
		mustCommit(t, s, set("e", nil, "a", "y"))
		mustCommit(t, s, &engine.StaticCommit{FlowID: "e", Changes: []engine.StaticChange{{Key: "gone", After: 1.0}}})
		mustCommit(t, s, &engine.StaticCommit{FlowID: "e", Changes: []engine.StaticChange{{Key: "gone", Deleted: true}}})
		var seen []string
		if err := s.EachStatic(ctx(t), func(flowID, key string, v any) error {
			seen = append(seen, fmt.Sprintf("%s/%s=%v", flowID, key, v))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if want := []string{"e/a=y", "f/a=x", "f/b=2"}; !reflect.DeepEqual(seen, want) {
			t.Errorf("EachStatic saw %v, want %v", seen, want)
		}

		boom := errors.New("boom")
		if _, err := s.RewriteStatic(ctx(t), func(flowID, key string, v any) (any, bool, error) {
			if flowID == "f" && key == "b" {
				return nil, false, boom
			}
			return "changed", true, nil
		}); !errors.Is(err, boom) {
			t.Fatalf("RewriteStatic with a failing fn: %v; want its error", err)
		}
		checkStatic(t, s, "e", map[string]engine.StaticValue{"a": {Value: "y", Version: 1}})

		n, err := s.RewriteStatic(ctx(t), func(flowID, key string, v any) (any, bool, error) {
			if s, ok := v.(string); ok {
				return strings.ToUpper(s), true, nil
			}
			return v, false, nil
		})
		if err != nil || n != 2 {
			t.Fatalf("RewriteStatic = %d, %v; want 2 rewritten", n, err)
		}
		// Versions are kept, so nodes that read before the rewrite still commit.
		checkStatic(t, s, "f", map[string]engine.StaticValue{"a": {Value: "X", Version: 1}, "b": {Value: int64(2), Version: 1}})
		mustCommit(t, s, set("f", map[string]int64{"a": 1}, "a", "after"))
	}},
	{"sealed store over the backend", func(t *testing.T, open Opener) {
		key := make([]byte, 32)
		key[0] = 7
		keys, err := storage.NewKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		b := open(t)
		s := storage.NewSealedStore(b, keys)
		mustCommit(t, s, set("f", nil, "token", "secret"))
		checkStatic(t, s, "f", map[string]engine.StaticValue{"token": {Value: "secret", Version: 1}})
		raw, err := b.Static(ctx(t), "f")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := raw["token"].(string); !strings.HasPrefix(v, "flowd:enc:v1:") {
			t.Errorf("stored value %q is not sealed", raw["token"])
		}
	}},
}

// set is a commit of one key of flowID to v, having read reads.
func set(flowID string, reads map[string]int64, key string, v any) *engine.StaticCommit {
	return &engine.StaticCommit{FlowID: flowID, Reads: reads, Changes: []engine.StaticChange{{Key: key, After: v}}}
}

func mustCommit(t *testing.T, s engine.StaticStore, c *engine.StaticCommit) {
	t.Helper()
	if err := s.CommitStatic(ctx(t), c); err != nil {
		t.Fatalf("commit %+v: %v", c.Changes, err)
	}
}

// checkStatic loads the flow's static data and compares it with want (nil: any) and returns it.
func checkStatic(t *testing.T, s engine.StaticStore, flowID string, want map[string]engine.StaticValue) map[string]engine.StaticValue {
	t.Helper()
	got, err := s.LoadStatic(ctx(t), flowID)
	if err != nil {
		t.Fatal(err)
	}
	if want != nil && !maps.EqualFunc(got, want, func(a, b engine.StaticValue) bool { return reflect.DeepEqual(a, b) }) {
		t.Errorf("static data of %s = %#v, want %#v", flowID, got, want)
	}
	return got
}

// increment adds one to the integer at key as a node does: read, then commit on the version
// read, again on conflict.
func increment(t *testing.T, s engine.StaticStore, flowID, key string) error {
	for range 1000 {
		loaded, err := s.LoadStatic(ctx(t), flowID)
		if err != nil {
			return err
		}
		sv := loaded[key]
		n, _ := sv.Value.(int64)
		err = s.CommitStatic(ctx(t), set(flowID, map[string]int64{key: sv.Version}, key, n+1))
		if errors.Is(err, engine.ErrStaticConflict) {
			continue
		}
		return err
	}
	return errors.New("increment: conflicted 1000 times in a row")
}
