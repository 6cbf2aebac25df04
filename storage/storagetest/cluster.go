package storagetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// clusterTTL is the heartbeat and lease ttl of the tests that wait for one to expire. A
// store may measure it on its own clock, so the tests wait it out in real time: short.
const clusterTTL = 400 * time.Millisecond

// skew is how far apart the clocks of the two callers of the clock-skew test are.
const skew = time.Hour

// eventually polls cond until it holds, and fails t when it does not within a generous
// bound; what says what was awaited.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notBefore fails t when less than ttl passed between since and now: something that expires
// ttl after a call started at since must not have expired before.
func notBefore(t *testing.T, what string, since time.Time, ttl time.Duration) {
	t.Helper()
	if d := time.Since(since); d < ttl {
		t.Errorf("%s after %s; want not before the ttl of %s", what, d, ttl)
	}
}

// acquirer returns a function that asks c for the named lease for holder, for ttl from the
// time clock reads: the caller's clock, which may be off.
func acquirer(t *testing.T, c engine.Coordinator, clock func() time.Time) func(name, holder string, ttl time.Duration) bool {
	return func(name, holder string, ttl time.Duration) bool {
		t.Helper()
		now := clock()
		got, err := c.AcquireLease(ctx(t), name, holder, now, now.Add(ttl))
		if err != nil {
			t.Fatalf("AcquireLease(%s, %s, ttl %s): %v", name, holder, ttl, err)
		}
		return got
	}
}

// liveIDs lists the ids of the instances c sees alive at the time clock reads.
func liveIDs(t *testing.T, c engine.Coordinator, clock func() time.Time) []string {
	t.Helper()
	live, err := c.Instances(ctx(t), clock())
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, in := range live {
		ids = append(ids, in.ID)
	}
	return ids
}

// beat heartbeats inst as alive for ttl from the time clock reads.
func beat(t *testing.T, c engine.Coordinator, inst engine.Instance, clock func() time.Time, ttl time.Duration) {
	t.Helper()
	inst.SeenAt = clock()
	inst.Expires = inst.SeenAt.Add(ttl)
	if err := c.Heartbeat(ctx(t), inst); err != nil {
		t.Fatal(err)
	}
}

var clusterTests = []test{
	{"leases", func(t *testing.T, open Opener) {
		c, _ := coordinator(t, open(t))
		acquire := acquirer(t, c, time.Now)
		want := func(holder string, ttl time.Duration, want bool) {
			t.Helper()
			if got := acquire("schedules", holder, ttl); got != want {
				t.Fatalf("AcquireLease(%s, ttl %s) = %v; want %v", holder, ttl, got, want)
			}
		}
		want("a", time.Minute, true)
		want("b", time.Minute, false)
		// a renews for clusterTTL: the new ttl replaces the minute, so b takes the lease
		// over once it has passed, and not before.
		renewed := time.Now()
		want("a", clusterTTL, true)
		want("b", time.Minute, false)
		eventually(t, "b takes the expired lease over", func() bool { return acquire("schedules", "b", time.Minute) })
		notBefore(t, "b took the lease over", renewed, clusterTTL)
		want("a", time.Minute, false)
		if err := c.ReleaseLease(ctx(t), "schedules", "a"); err != nil {
			t.Fatal(err)
		}
		want("a", time.Minute, false) // a's release of b's lease did nothing
		if err := c.ReleaseLease(ctx(t), "schedules", "b"); err != nil {
			t.Fatal(err)
		}
		want("a", time.Minute, true)
		if !acquire("other", "b", time.Second) {
			t.Fatal("a lease of another name is not free")
		}
	}},
	{"lease race has one winner", func(t *testing.T, open Opener) {
		c, _ := coordinator(t, open(t))
		now := time.Now()
		wins := make(chan bool, 20)
		for i := range 20 {
			go func() {
				ok, err := c.AcquireLease(ctx(t), "race", string(rune('a'+i)), now, now.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				wins <- ok
			}()
		}
		n := 0
		for range 20 {
			if <-wins {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d holders won one lease", n)
		}
	}},
	{"ticks are claimed once", func(t *testing.T, open Opener) {
		b := open(t)
		c, cl := coordinator(t, b)
		other := cl.OpenInstance(t, "other").(engine.Coordinator)
		tick := time.Now().Truncate(time.Second)
		claim := func(c engine.Coordinator, flow, trigger string, at time.Time, holder string, want bool) {
			t.Helper()
			got, err := c.ClaimTick(ctx(t), flow, trigger, at, holder)
			if err != nil || got != want {
				t.Fatalf("ClaimTick(%s %s %s by %s) = %v, %v; want %v", flow, trigger, at, holder, got, err, want)
			}
		}
		claim(c, "f", "every", tick, "a", true)
		claim(c, "f", "every", tick, "a", false)
		claim(other, "f", "every", tick, "b", false)
		claim(other, "f", "every", tick.Add(time.Second), "b", true)
		claim(c, "f", "other", tick, "a", true)
		claim(c, "g", "every", tick, "a", true)
		// A tick claimed more than a day before is forgotten, so claiming it again is allowed.
		claim(c, "f", "every", tick.Add(25*time.Hour), "a", true)
		claim(c, "f", "every", tick, "b", true)
	}},
	{"heartbeats", func(t *testing.T, open Opener) {
		c, _ := coordinator(t, open(t))
		now := time.Now().UTC().Truncate(time.Microsecond)
		a := engine.Instance{ID: "a", Host: "h1", PID: 11, StartedAt: now.Add(-time.Hour),
			Flows: map[string]string{"token-refresh": "v1", "x": "v2"}}
		b := engine.Instance{ID: "b", Host: "h2", PID: 22, StartedAt: now.Add(-time.Minute), Flows: map[string]string{}}
		beaten := time.Now()
		beat(t, c, b, time.Now, clusterTTL)
		beat(t, c, a, time.Now, time.Minute)
		live, err := c.Instances(ctx(t), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// SeenAt and Expires may be on the store's clock; the ttl between them is the caller's.
		if len(live) != 2 {
			t.Fatalf("Instances = %+v, want a and b", live)
		}
		for i, want := range []struct {
			in  engine.Instance
			ttl time.Duration
		}{{a, time.Minute}, {b, clusterTTL}} {
			got := live[i]
			if ttl := got.Expires.Sub(got.SeenAt); ttl != want.ttl {
				t.Errorf("instance %s expires %s after it was seen, want its ttl %s", got.ID, ttl, want.ttl)
			}
			got.SeenAt, got.Expires = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want.in) {
				t.Errorf("Instances[%d] = %+v, want %+v (a then b: oldest first, as beaten)", i, got, want.in)
			}
		}
		eventually(t, "b expires", func() bool { return reflect.DeepEqual(liveIDs(t, c, time.Now), []string{"a"}) })
		notBefore(t, "b expired", beaten, clusterTTL)
		// Beating again brings an expired instance back.
		beat(t, c, b, time.Now, time.Minute)
		if got := liveIDs(t, c, time.Now); !reflect.DeepEqual(got, []string{"a", "b"}) {
			t.Errorf("after b beat again: %v, want a and b", got)
		}
		if !acquirer(t, c, time.Now)("l", "b", time.Hour) {
			t.Fatal("b cannot take a free lease")
		}
		if err := c.Leave(ctx(t), "b"); err != nil {
			t.Fatal(err)
		}
		if got := liveIDs(t, c, time.Now); !reflect.DeepEqual(got, []string{"a"}) {
			t.Errorf("after b left: %v, want a only", got)
		}
		if !acquirer(t, c, time.Now)("l", "a", time.Hour) {
			t.Error("the lease of an instance that left is not free")
		}
	}},
	{"recover runs of dead instances", func(t *testing.T, open Opener) {
		b := open(t)
		c, cl := coordinator(t, b)
		alive, dead := cl.OpenInstance(t, "alive"), cl.OpenInstance(t, "dead")
		now := time.Now().UTC()
		beat(t, c, engine.Instance{ID: "alive", Host: "h", PID: 1, StartedAt: now}, time.Now, time.Minute)
		deadInst := engine.Instance{ID: "dead", Host: "h", PID: 2, StartedAt: now}
		beat(t, c, deadInst, time.Now, time.Minute)
		create(t, alive, runningRun("of-alive", "f", now))
		create(t, dead, runningRun("of-dead", "f", now))
		finished := runningRun("finished", "f", now)
		create(t, dead, finished)
		finished.Status, finished.FinishedAt = engine.StatusSuccess, now
		if err := dead.FinishRun(ctx(t), finished); err != nil {
			t.Fatal(err)
		}

		if n, err := c.RecoverRuns(ctx(t), time.Now()); err != nil || n != 0 {
			t.Fatalf("RecoverRuns while both live = %d, %v; want 0", n, err)
		}
		// dead's last beat: it dies clusterTTL after it.
		beaten := time.Now()
		beat(t, c, deadInst, time.Now, clusterTTL)
		var (
			marked int
			at     time.Time
		)
		eventually(t, "the dead instance's run is marked crashed", func() bool {
			at = time.Now().UTC()
			n, err := c.RecoverRuns(ctx(t), at)
			if err != nil {
				t.Fatal(err)
			}
			marked += n
			return marked > 0
		})
		notBefore(t, "the dead instance's run was marked crashed", beaten, clusterTTL)
		if marked != 1 {
			t.Errorf("RecoverRuns after dead's expiry marked %d runs; want 1", marked)
		}
		r := getRun(t, alive, "of-dead")
		if r.Status != engine.StatusCrashed || !r.FinishedAt.Equal(at.Truncate(time.Microsecond)) || !strings.Contains(r.Error, "dead") {
			t.Errorf("dead instance's run: %s at %v, error %q; want crashed at %v naming the instance", r.Status, r.FinishedAt, r.Error, at)
		}
		if st := getRun(t, dead, "of-alive").Status; st != engine.StatusRunning {
			t.Errorf("live instance's run is %s", st)
		}
		if st := getRun(t, b, "finished").Status; st != engine.StatusSuccess {
			t.Errorf("finished run is %s", st)
		}
	}},
	{"clock skew between callers does not matter", func(t *testing.T, open Opener) {
		// Two instances whose clocks are skew apart, each calling the store with its own
		// times: a store shared by processes on different hosts must judge liveness and
		// expiry by one clock, its own, and use only the durations the callers pass.
		_, cl := coordinator(t, open(t))
		slowStore, fastStore := cl.OpenInstance(t, "slow"), cl.OpenInstance(t, "fast")
		slow, fast := slowStore.(engine.Coordinator), fastStore.(engine.Coordinator)
		slowClock := time.Now
		fastClock := func() time.Time { return time.Now().Add(skew) }
		started := time.Now().UTC().Truncate(time.Microsecond)
		beat(t, slow, engine.Instance{ID: "slow", Host: "h1", PID: 1, StartedAt: started}, slowClock, time.Minute)
		beat(t, fast, engine.Instance{ID: "fast", Host: "h2", PID: 2, StartedAt: started}, fastClock, time.Minute)
		for _, in := range []struct {
			name  string
			c     engine.Coordinator
			clock func() time.Time
		}{{"slow", slow, slowClock}, {"fast", fast, fastClock}} {
			if got := liveIDs(t, in.c, in.clock); !reflect.DeepEqual(got, []string{"fast", "slow"}) {
				t.Errorf("%s sees %v alive; want both", in.name, got)
			}
		}

		// The runs of the slow instance are not crashed by the fast one.
		create(t, slowStore, runningRun("of-slow", "f", started))
		if n, err := fast.RecoverRuns(ctx(t), fastClock()); err != nil || n != 0 {
			t.Errorf("the fast instance's RecoverRuns = %d, %v; want 0 while the slow one is alive", n, err)
		}
		if st := getRun(t, fastStore, "of-slow").Status; st != engine.StatusRunning {
			t.Errorf("the slow instance's run is %s", st)
		}

		// A lease each holds for clusterTTL is not taken by the other before that ttl ends,
		// and is taken once it has.
		slowAcquire, fastAcquire := acquirer(t, slow, slowClock), acquirer(t, fast, fastClock)
		taken := time.Now()
		if !slowAcquire("by-slow", "slow", clusterTTL) || !fastAcquire("by-fast", "fast", clusterTTL) {
			t.Fatal("free leases not taken")
		}
		if fastAcquire("by-slow", "fast", time.Minute) {
			t.Error("the fast instance took the slow one's lease at once")
		}
		if slowAcquire("by-fast", "slow", time.Minute) {
			t.Error("the slow instance took the fast one's lease at once")
		}
		eventually(t, "the fast instance takes the slow one's expired lease", func() bool {
			return fastAcquire("by-slow", "fast", time.Minute)
		})
		notBefore(t, "the fast instance took the slow one's lease", taken, clusterTTL)
		eventually(t, "the slow instance takes the fast one's expired lease", func() bool {
			return slowAcquire("by-fast", "slow", time.Minute)
		})
		notBefore(t, "the slow instance took the fast one's lease", taken, clusterTTL)
	}},
}

var lockTests = []test{
	{"excludes across instances", func(t *testing.T, open Opener) {
		b := open(t)
		la, ok := b.(engine.Locker)
		if !ok {
			t.Skipf("%T is not an engine.Locker", b)
		}
		_, cl := coordinator(t, b)
		lb := cl.OpenInstance(t, "b").(engine.Locker)

		unlock, err := la.Lock(ctx(t), "f", "token")
		if err != nil {
			t.Fatal(err)
		}
		// Another flow's lock, or another name, is free.
		for _, k := range [][2]string{{"g", "token"}, {"f", "other"}} {
			u, err := lb.Lock(ctx(t), k[0], k[1])
			if err != nil {
				t.Fatalf("lock %v while f/token is held: %v", k, err)
			}
			u()
		}
		short, cancel := context.WithTimeout(ctx(t), 200*time.Millisecond)
		_, err = lb.Lock(short, "f", "token")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("second instance's Lock while held: %v; want it to wait until its ctx ends", err)
		}
		// Its local waiters too.
		short, cancel = context.WithTimeout(ctx(t), 50*time.Millisecond)
		_, err = la.Lock(short, "f", "token")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("same instance's Lock while held: %v", err)
		}

		got := make(chan func(), 1)
		go func() {
			u, err := lb.Lock(ctx(t), "f", "token")
			if err != nil {
				t.Error(err)
				u = func() {}
			}
			got <- u
		}()
		unlock()
		unlock() // a second call does nothing
		(<-got)()
		// After a cancelled wait the lock is still usable by everyone.
		u, err := la.Lock(ctx(t), "f", "token")
		if err != nil {
			t.Fatal(err)
		}
		u()
	}},
	{"counter under lock", func(t *testing.T, open Opener) {
		b := open(t)
		if _, ok := b.(engine.Locker); !ok {
			t.Skipf("%T is not an engine.Locker", b)
		}
		_, cl := coordinator(t, b)
		stores := []engine.Locker{b.(engine.Locker), cl.OpenInstance(t, "b").(engine.Locker), cl.OpenInstance(t, "c").(engine.Locker)}
		// A read-modify-write that ignores versions (a blind write) is safe only under the
		// lock: with it, no increment is lost.
		statics := []engine.StaticStore{b, cl.OpenInstance(t, "d"), cl.OpenInstance(t, "e")}
		done := make(chan error, 30)
		for i := range 30 {
			go func() {
				l, st := stores[i%3], statics[i%3]
				unlock, err := l.Lock(ctx(t), "f", "n")
				if err != nil {
					done <- err
					return
				}
				defer unlock()
				loaded, err := st.LoadStatic(ctx(t), "f")
				if err != nil {
					done <- err
					return
				}
				n, _ := loaded["n"].Value.(int64)
				done <- st.CommitStatic(ctx(t), set("f", nil, "n", n+1))
			}()
		}
		for range 30 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		checkStatic(t, b, "f", map[string]engine.StaticValue{"n": {Value: int64(30), Version: 30}})
	}},
}
