package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/web"
)

// fakeCoordinator is an in-memory engine.Coordinator for the member's logic; the real one
// (PostgreSQL) is exercised by the storage conformance suite and the three-process tests.
type fakeCoordinator struct {
	mu        sync.Mutex
	instances map[string]engine.Instance
	leases    map[string]fakeLease
	// running maps each running run to the instance that started it.
	running  map[string]string
	crashed  []string
	recovers int
	// fail, when set, is returned by every call but Heartbeat (failBeat by Heartbeat).
	fail, failBeat error
}

type fakeLease struct {
	holder  string
	expires time.Time
}

func newFakeCoordinator() *fakeCoordinator {
	return &fakeCoordinator{instances: map[string]engine.Instance{}, leases: map[string]fakeLease{}, running: map[string]string{}}
}

func (c *fakeCoordinator) Heartbeat(ctx context.Context, inst engine.Instance) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failBeat != nil {
		return c.failBeat
	}
	inst.Flows = maps.Clone(inst.Flows)
	c.instances[inst.ID] = inst
	return nil
}

func (c *fakeCoordinator) Instances(ctx context.Context, now time.Time) ([]engine.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return nil, c.fail
	}
	var live []engine.Instance
	for _, in := range c.instances {
		if in.Expires.After(now) {
			live = append(live, in)
		}
	}
	return live, nil
}

func (c *fakeCoordinator) Leave(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.instances, id)
	for name, l := range c.leases {
		if l.holder == id {
			delete(c.leases, name)
		}
	}
	return nil
}

func (c *fakeCoordinator) AcquireLease(ctx context.Context, name, holder string, now, expires time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return false, c.fail
	}
	if l, ok := c.leases[name]; ok && l.holder != holder && l.expires.After(now) {
		return false, nil
	}
	c.leases[name] = fakeLease{holder, expires}
	return true, nil
}

func (c *fakeCoordinator) ReleaseLease(ctx context.Context, name, holder string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leases[name].holder == holder {
		delete(c.leases, name)
	}
	return nil
}

func (c *fakeCoordinator) ClaimTick(ctx context.Context, flowID, trigger string, tick time.Time, holder string) (bool, error) {
	return false, errors.New("the member does not claim ticks; the scheduler does")
}

func (c *fakeCoordinator) RecoverRuns(ctx context.Context, now time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.recovers++
	n := 0
	for run, id := range c.running {
		if in, ok := c.instances[id]; !ok || !in.Expires.After(now) {
			delete(c.running, run)
			c.crashed = append(c.crashed, run)
			n++
		}
	}
	return n, nil
}

func (c *fakeCoordinator) set(f func(c *fakeCoordinator)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// fakeGate records what a member does to its scheduler.
type fakeGate struct {
	mu      sync.Mutex
	paused  bool
	resumes int
}

func (g *fakeGate) Pause() { g.mu.Lock(); g.paused = true; g.mu.Unlock() }

func (g *fakeGate) Resume(context.Context) { g.mu.Lock(); g.paused = false; g.resumes++; g.mu.Unlock() }

func (g *fakeGate) state() (paused bool, resumes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused, g.resumes
}

// testClock is a clock the test moves by hand, shared by the members of one test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

const testTTL = 3 * time.Second

// testMember is a member with a fake gate, paused as serve starts it, and a log of its own.
func testMember(t *testing.T, c engine.Coordinator, id string, clock *testClock, logs slog.Handler) (*member, *fakeGate) {
	t.Helper()
	g := &fakeGate{paused: true}
	if logs == nil {
		logs = slog.DiscardHandler
	}
	return newMember(c, id, g, testTTL, slog.New(logs), clock.Now), g
}

func mustBeat(t *testing.T, m *member) {
	t.Helper()
	if err := m.beat(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMemberScheduleLease(t *testing.T) {
	c := newFakeCoordinator()
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a, ga := testMember(t, c, "a", clock, nil)
	b, gb := testMember(t, c, "b", clock, nil)
	leader := func(t *testing.T, want string) {
		t.Helper()
		for _, x := range []struct {
			m *member
			g *fakeGate
		}{{a, ga}, {b, gb}} {
			paused, _ := x.g.state()
			if holds := x.m.Status().ScheduleLeader; holds != (x.m.self.ID == want) || paused == holds {
				t.Fatalf("%s: leader %v, scheduler paused %v; want %q to lead", x.m.self.ID, holds, paused, want)
			}
		}
	}
	mustBeat(t, a)
	mustBeat(t, b)
	leader(t, "a")

	t.Run("the holder renews, the other waits", func(t *testing.T) {
		for range 5 {
			clock.add(time.Second)
			mustBeat(t, b)
			mustBeat(t, a)
		}
		leader(t, "a")
		if _, resumes := ga.state(); resumes != 1 {
			t.Errorf("a's scheduler resumed %d times, want once", resumes)
		}
	})
	t.Run("a stops beating: b takes over once the lease expires", func(t *testing.T) {
		clock.add(testTTL - time.Millisecond)
		mustBeat(t, b)
		leader(t, "a") // a's view: it has not beaten to learn otherwise
		if paused, _ := gb.state(); !paused {
			t.Fatal("b resumed before a's lease expired")
		}
		clock.add(time.Millisecond)
		mustBeat(t, b)
		if paused, _ := gb.state(); paused || !b.Status().ScheduleLeader {
			t.Fatal("b did not take the expired lease")
		}
	})
	t.Run("a comes back and pauses", func(t *testing.T) {
		mustBeat(t, a)
		leader(t, "b")
	})
	t.Run("resign hands the lease over at the next beat", func(t *testing.T) {
		b.resign(context.Background())
		mustBeat(t, b) // a resigned member beats on without taking the lease again
		mustBeat(t, a)
		if !a.Status().ScheduleLeader || b.Status().ScheduleLeader {
			t.Fatalf("after b resigned: a leads %v, b leads %v", a.Status().ScheduleLeader, b.Status().ScheduleLeader)
		}
		if err := b.leave(context.Background()); err != nil {
			t.Fatal(err)
		}
		mustBeat(t, a)
		if n := a.Status().Instances; n != 1 {
			t.Errorf("%d instances after b left, want 1", n)
		}
	})
}

// TestMemberKeepsLeaseThroughFailedRenewal: a renewal that fails keeps the schedules firing
// until the lease last taken would expire, not a moment longer.
func TestMemberKeepsLeaseThroughFailedRenewal(t *testing.T) {
	c := newFakeCoordinator()
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a, ga := testMember(t, c, "a", clock, nil)
	mustBeat(t, a)
	c.set(func(c *fakeCoordinator) { c.fail = errors.New("connection reset") })
	clock.add(testTTL - time.Millisecond)
	mustBeat(t, a)
	if paused, _ := ga.state(); paused || !a.Status().ScheduleLeader {
		t.Fatal("paused before the lease expired")
	}
	clock.add(time.Millisecond)
	mustBeat(t, a)
	if paused, _ := ga.state(); !paused || a.Status().ScheduleLeader {
		t.Fatal("still firing after the lease expired without renewal")
	}
	c.set(func(c *fakeCoordinator) { c.fail = nil })
	mustBeat(t, a)
	if paused, resumes := ga.state(); paused || resumes != 2 {
		t.Fatalf("after the store came back: paused %v, resumed %d times; want resumed twice", paused, resumes)
	}
}

func TestMemberStartFailsWithoutHeartbeat(t *testing.T) {
	c := newFakeCoordinator()
	c.failBeat = errors.New("permission denied for table instances")
	m, _ := testMember(t, c, "a", &testClock{now: time.Now()}, nil)
	err := m.start(context.Background())
	if err == nil || err.Error() != "cluster heartbeat: permission denied for table instances" {
		t.Fatalf("start: %v", err)
	}
}

func TestMemberFlowVersions(t *testing.T) {
	c := newFakeCoordinator()
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	warns := newSchedLogs("cluster: flow versions differ from other instances; deploy the same flows folder to every instance")
	agreed := newSchedLogs("cluster: flow versions agree with every live instance again")
	a, _ := testMember(t, c, "a", clock, fanout{warns, agreed})
	b, _ := testMember(t, c, "b", clock, nil)
	flow := func(id, version string) *engine.Flow { return &engine.Flow{ID: id, Version: version} }
	a.setFlows([]*engine.Flow{flow("f", "v1"), flow("token", "t1")})
	b.setFlows([]*engine.Flow{flow("f", "v2"), flow("token", "t1"), flow("g", "g1")})
	mustBeat(t, b)
	mustBeat(t, a)

	want := []web.FlowDiff{
		{Flow: "f", Versions: map[string]string{"a": "v1", "b": "v2"}},
		{Flow: "g", Versions: map[string]string{"a": "", "b": "g1"}},
	}
	if st := a.Status(); st.Instances != 2 || !reflect.DeepEqual(st.FlowsDiffer, want) {
		t.Fatalf("status %+v, want 2 instances differing in %+v", st, want)
	}
	if w := warns.next(t); w["flows"].String() != "f,g" || w["instances"].String() != "b" {
		t.Errorf("warning names flows %v and instances %v", w["flows"], w["instances"])
	}
	mustBeat(t, a)
	select {
	case <-warns.ch:
		t.Error("the same difference was logged twice")
	default:
	}

	b.setFlows([]*engine.Flow{flow("f", "v1"), flow("token", "t1")})
	mustBeat(t, b)
	mustBeat(t, a)
	if st := a.Status(); len(st.FlowsDiffer) != 0 {
		t.Fatalf("still differing after b loaded the same flows: %+v", st.FlowsDiffer)
	}
	agreed.next(t)

	t.Run("an instance whose heartbeat expired is not compared", func(t *testing.T) {
		b.setFlows(nil)
		mustBeat(t, b)
		mustBeat(t, a)
		if len(a.Status().FlowsDiffer) != 2 {
			t.Fatalf("b serving nothing: %+v", a.Status().FlowsDiffer)
		}
		clock.add(testTTL)
		mustBeat(t, a)
		if st := a.Status(); st.Instances != 1 || len(st.FlowsDiffer) != 0 {
			t.Fatalf("after b's heartbeat expired: %+v", st)
		}
	})
}

// TestMemberRecoversRunsOfDeadInstances: runs of an instance whose heartbeat expired are
// marked crashed, those of live ones are not, and recovery is asked every ttl, not every beat.
func TestMemberRecoversRunsOfDeadInstances(t *testing.T) {
	c := newFakeCoordinator()
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a, _ := testMember(t, c, "a", clock, nil)
	b, _ := testMember(t, c, "b", clock, nil)
	mustBeat(t, a)
	mustBeat(t, b)
	c.set(func(c *fakeCoordinator) { c.running = map[string]string{"run-a": "a", "run-b": "b"} })
	for range 3 { // b is killed; a beats on for one ttl
		clock.add(testTTL / 3)
		mustBeat(t, a)
	}
	c.set(func(c *fakeCoordinator) {
		if !reflect.DeepEqual(c.crashed, []string{"run-b"}) || c.running["run-a"] != "a" {
			t.Errorf("crashed %v, still running %v; want only b's run crashed", c.crashed, c.running)
		}
		// The first beats of a and b, then a's after one ttl.
		if c.recovers != 3 {
			t.Errorf("%d recoveries over 4 beats of a and 1 of b within one ttl, want 3", c.recovers)
		}
	})
}
