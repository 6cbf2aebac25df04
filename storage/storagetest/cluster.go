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

var clusterTests = []test{
	{"leases", func(t *testing.T, open Opener) {
		c, _ := coordinator(t, open(t))
		now := time.Now()
		acquire := func(holder string, at time.Time, want bool) {
			t.Helper()
			got, err := c.AcquireLease(ctx(t), "schedules", holder, at, at.Add(10*time.Second))
			if err != nil || got != want {
				t.Fatalf("AcquireLease(%s at +%s) = %v, %v; want %v", holder, at.Sub(now), got, err, want)
			}
		}
		acquire("a", now, true)
		acquire("b", now.Add(time.Second), false)
		acquire("a", now.Add(5*time.Second), true) // renewed until +15s
		acquire("b", now.Add(12*time.Second), false)
		acquire("b", now.Add(15*time.Second), true) // expired: taken over
		acquire("a", now.Add(16*time.Second), false)
		if err := c.ReleaseLease(ctx(t), "schedules", "a"); err != nil {
			t.Fatal(err)
		}
		acquire("a", now.Add(17*time.Second), false) // a's release of b's lease did nothing
		if err := c.ReleaseLease(ctx(t), "schedules", "b"); err != nil {
			t.Fatal(err)
		}
		acquire("a", now.Add(18*time.Second), true)
		got, err := c.AcquireLease(ctx(t), "other", "b", now, now.Add(time.Second))
		if err != nil || !got {
			t.Fatalf("a lease of another name: %v, %v", got, err)
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
		a := engine.Instance{ID: "a", Host: "h1", PID: 11, StartedAt: now.Add(-time.Hour), SeenAt: now,
			Expires: now.Add(10 * time.Second), Flows: map[string]string{"token-refresh": "v1", "x": "v2"}}
		b := engine.Instance{ID: "b", Host: "h2", PID: 22, StartedAt: now.Add(-time.Minute), SeenAt: now,
			Expires: now.Add(5 * time.Second), Flows: map[string]string{}}
		for _, in := range []engine.Instance{b, a} {
			if err := c.Heartbeat(ctx(t), in); err != nil {
				t.Fatal(err)
			}
		}
		live := func(at time.Time) []engine.Instance {
			t.Helper()
			got, err := c.Instances(ctx(t), at)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := live(now); !reflect.DeepEqual(got, []engine.Instance{a, b}) {
			t.Errorf("Instances = %+v, want a then b (oldest first) as beaten", got)
		}
		if got := live(now.Add(6 * time.Second)); len(got) != 1 || got[0].ID != "a" {
			t.Errorf("after b's expiry: %+v, want a only", got)
		}
		b.SeenAt, b.Expires = now.Add(6*time.Second), now.Add(20*time.Second)
		if err := c.Heartbeat(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		if got := live(now.Add(15 * time.Second)); len(got) != 1 || got[0].ID != "b" {
			t.Errorf("after b beat again and a expired: %+v, want b only", got)
		}
		if ok, err := c.AcquireLease(ctx(t), "l", "b", now, now.Add(time.Hour)); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if err := c.Leave(ctx(t), "b"); err != nil {
			t.Fatal(err)
		}
		if got := live(now); len(got) != 1 || got[0].ID != "a" {
			t.Errorf("after b left: %+v, want a only", got)
		}
		if ok, err := c.AcquireLease(ctx(t), "l", "a", now, now.Add(time.Hour)); err != nil || !ok {
			t.Errorf("lease of an instance that left is not free: %v, %v", ok, err)
		}
	}},
	{"recover runs of dead instances", func(t *testing.T, open Opener) {
		b := open(t)
		c, cl := coordinator(t, b)
		alive, dead := cl.OpenInstance(t, "alive"), cl.OpenInstance(t, "dead")
		now := time.Now().UTC()
		for _, in := range []engine.Instance{
			{ID: "alive", Host: "h", PID: 1, StartedAt: now, SeenAt: now, Expires: now.Add(time.Minute)},
			{ID: "dead", Host: "h", PID: 2, StartedAt: now, SeenAt: now, Expires: now.Add(10 * time.Second)},
		} {
			if err := c.Heartbeat(ctx(t), in); err != nil {
				t.Fatal(err)
			}
		}
		create(t, alive, runningRun("of-alive", "f", now))
		create(t, dead, runningRun("of-dead", "f", now))
		finished := runningRun("finished", "f", now)
		create(t, dead, finished)
		finished.Status, finished.FinishedAt = engine.StatusSuccess, now
		if err := dead.FinishRun(ctx(t), finished); err != nil {
			t.Fatal(err)
		}

		if n, err := c.RecoverRuns(ctx(t), now.Add(5*time.Second)); err != nil || n != 0 {
			t.Fatalf("RecoverRuns while both live = %d, %v; want 0", n, err)
		}
		at := now.Add(11 * time.Second)
		if n, err := c.RecoverRuns(ctx(t), at); err != nil || n != 1 {
			t.Fatalf("RecoverRuns after dead's expiry = %d, %v; want 1", n, err)
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
