package storage

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/flowd/flowd/engine"
)

// A cached read hands out a copy: a caller changing what it got does not change what the
// next read gets.
func TestStaticCacheReadsAreCopies(t *testing.T) {
	s := openTest(t)
	set(t, s, "f", engine.StaticChange{Key: "token", After: "a"})
	for range 2 {
		got := load(t, s, "f")
		if got["token"].Value != "a" {
			t.Fatalf("token = %v, want a", got["token"].Value)
		}
		got["token"] = engine.StaticValue{Value: "changed by the caller", Version: 99}
		delete(got, "token")
	}
}

// What this process writes is what its next read sees, at once: writes, resets and rewrites
// all drop the cached copy.
func TestStaticCacheSeesOwnWrites(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	set(t, s, "f", engine.StaticChange{Key: "token", After: "a"})
	load(t, s, "f") // cache it

	set(t, s, "f", engine.StaticChange{Key: "token", After: "b"})
	if got := load(t, s, "f")["token"]; got.Value != "b" || got.Version != 2 {
		t.Fatalf("after a write: %+v, want b at version 2", got)
	}

	if _, err := s.RewriteStatic(ctx, func(_, _ string, v any) (any, bool, error) {
		return v.(string) + "!", true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := load(t, s, "f")["token"]; got.Value != "b!" {
		t.Fatalf("after a rewrite: %+v, want b!", got)
	}

	if err := s.ResetStatic(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if got := load(t, s, "f"); len(got) != 0 {
		t.Fatalf("after a reset: %v, want nothing", got)
	}
}

// A write by another process (here another connection, as `flowd rotate-key` or a sqlite3
// shell would make) is seen by this process's reads, while its runs keep the writer busy and
// while it is idle.
func TestStaticCacheSeesOtherProcessWrites(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	set(t, s, "f", engine.StaticChange{Key: "token", After: "old"})
	load(t, s, "f")

	other, err := sql.Open("sqlite3", "file:"+s.Path()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	write := func(v string) {
		t.Helper()
		if _, err := other.ExecContext(ctx, `UPDATE static_data SET value = ?, version = version + 1 WHERE flow_id = 'f' AND key = 'token'`, `"`+v+`"`); err != nil {
			t.Fatal(err)
		}
	}

	write("idle")
	await(t, "the other process's write, idle", func() bool { return load(t, s, "f")["token"].Value == "idle" })

	write("busy")
	i := 0
	await(t, "the other process's write, under load", func() bool {
		i++
		if err := s.CreateRun(ctx, testRun(fmt.Sprintf("busy-%d", i), "f", i)); err != nil {
			t.Fatal(err)
		}
		return load(t, s, "f")["token"].Value == "busy"
	})

	// A commit made from the stale copy is refused rather than losing the other write.
	write("unseen")
	stale := map[string]int64{"token": 3}
	c := &engine.StaticCommit{FlowID: "f", Reads: stale, Changes: []engine.StaticChange{{Key: "token", After: "mine"}}}
	if err := s.CommitStatic(ctx, c); err == nil {
		t.Fatal("a commit from a stale read succeeded")
	}
}
