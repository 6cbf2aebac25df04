package engine

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockFlow is double-checked locking in its smallest form: read the value, check it, and when
// it is missing take the lock, read and check again, and only then do the slow work.
const lockFlow = `{"id": "lf", "nodes": [
	{"name": "t", "type": "trigger"},
	{"name": "read", "type": "emit", "parameters": {"items": [{"v": "{{ $static.v }}"}]}},
	{"name": "arrive", "type": "arrive"},
	{"name": "check", "type": "split", "parameters": {"cond": "{{ $json.v != nil }}"},
	 "lock": {"name": "v", "output": "false", "recheckFrom": "read", "until": "write"}},
	{"name": "slow", "type": "wait"},
	{"name": "write", "type": "set", "parameters": {"key": "v", "value": "{{ 'computed by ' + $run.id }}"}},
	{"name": "done", "type": "emit", "parameters": {"items": [{"v": "{{ $static.v }}"}]}}
], "connections": {
	"t": ["read"], "read": ["arrive"], "arrive": ["check"],
	"check": {"true": ["done"], "false": ["slow"]}, "slow": ["write"], "write": ["done"]
}}`

func TestLockRunsTheSlowPathOnce(t *testing.T) {
	const runs = 20
	f := mustLoad(t, lockFlow)
	store := newMemStore()
	x := &Executor{Store: store, Logger: quiet}
	b := newBarrier(runs) // the slow path starts only once every run has checked once
	ctx := context.WithValue(context.Background(), barrierKey{}, b)

	results := make([]*Run, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			r, err := x.Run(ctx, f, RunRequest{})
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	wg.Wait()

	if n := b.calls.Load(); n != 1 {
		t.Fatalf("slow path ran %d times, want 1", n)
	}
	want, _ := store.get("lf", "v")
	rechecked := 0
	for _, r := range results {
		if r.Status != StatusSuccess {
			t.Fatalf("run %s: %s", r.Status, r.Error)
		}
		last := r.Nodes[len(r.Nodes)-1]
		if last.Node != "done" || last.Output[0][0]["v"] != want {
			t.Errorf("run ended with %v, want v = %v", last.Output, want)
		}
		for _, n := range r.Nodes {
			if n.Recheck {
				rechecked++
				break
			}
		}
	}
	if rechecked != runs {
		t.Errorf("%d runs rechecked, want all %d (each found the value missing at first)", rechecked, runs)
	}
}

func TestLockIsNotTakenWhenNotNeeded(t *testing.T) {
	f := mustLoad(t, lockFlow)
	store := newMemStore()
	store.static["lf"] = map[string]StaticValue{"v": {Value: "ready", Version: 1}}
	locker := &LocalLocker{}
	unlock, err := locker.Lock(context.Background(), "lf", "v") // another run holds it
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := (&Executor{Store: store, Logger: quiet, Locker: locker}).Run(ctx, f, RunRequest{})
	if err != nil || r.Status != StatusSuccess {
		t.Fatalf("run: %v %+v", err, r)
	}
	for _, n := range r.Nodes {
		if n.Recheck || n.Node == "slow" {
			t.Fatalf("a run with the value present went down the locked path: %v", order(r))
		}
	}
}

func TestLockWaitEndsWithTheRun(t *testing.T) {
	f := mustLoad(t, strings.Replace(lockFlow, `"id": "lf"`, `"id": "lf", "settings": {"timeout": "50ms"}`, 1))
	locker := &LocalLocker{}
	unlock, err := locker.Lock(context.Background(), "lf", "v")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	r, err := (&Executor{Store: newMemStore(), Logger: quiet, Locker: locker}).Run(context.Background(), f, RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusError || r.Error != "run timed out after 50ms" || r.ErrorNode != "check" {
		t.Fatalf("run %s %q at %q", r.Status, r.Error, r.ErrorNode)
	}
}

func TestLockLoadProblems(t *testing.T) {
	base := `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "a", "type": "pass"},
		{"name": "check", "type": "split", "parameters": {"cond": "{{ true }}"}, "lock": %s},
		{"name": "yes", "type": "pass"}, {"name": "no", "type": "pass"}],
		"connections": {"t": ["a"], "a": ["check"], "check": {"true": ["yes"], "false": ["no"]}}}`
	tests := []struct{ lock, want string }{
		{`{"output": "false"}`, `node "check": lock.name: required`},
		{`{"name": "x"}`, `lock.output: required: name the output whose items need the lock (true, false)`},
		{`{"name": "x", "output": "maybe"}`, `lock.output: node "check" has no output "maybe"`},
		{`{"name": "x", "output": "false", "recheckFrom": "yes"}`, `lock.recheckFrom: "yes" does not lead to "check"`},
		{`{"name": "x", "output": "false", "recheckFrom": "t"}`, `lock.recheckFrom: "t" is a trigger`},
		{`{"name": "x", "output": "false", "until": "yes"}`, `lock.until: "yes" is not reached from output "false"`},
		{`{"name": "x", "output": "false", "unti": "no"}`, `unknown key "unti" (did you mean "until"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			src := strings.Replace(base, "%s", tt.lock, 1)
			_, probs := (&Loader{Registry: testRegistry(t)}).Load("l.json", []byte(src))
			if !strings.Contains(probs.Error(), tt.want) {
				t.Fatalf("problems:\n%v\nwant %q", probs, tt.want)
			}
		})
	}
	ok := strings.Replace(base, "%s", `{"name": "x", "output": "false", "recheckFrom": "a", "until": "no"}`, 1)
	f, probs := (&Loader{Registry: testRegistry(t)}).Load("l.json", []byte(ok))
	if f == nil {
		t.Fatal(probs)
	}
	spec := f.Node("check").Settings.Lock
	if spec == nil || spec.Port != 1 || len(spec.Path) != 2 || spec.Path[0].Node.Name != "a" || spec.Until.Name != "no" {
		t.Fatalf("spec = %+v", spec)
	}
}
