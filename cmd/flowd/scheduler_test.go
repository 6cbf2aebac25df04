package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/storage"
)

// schedWait bounds every wait for a tick; a 1s schedule fires well within it.
const schedWait = 10 * time.Second

// schedCall is one run the scheduler started.
type schedCall struct {
	flow string
	req  engine.RunRequest
	at   time.Time // the tick, read back from the trigger item
}

// schedRunner is a fake run function: it reports each call on calls, then runs block (when
// set) before returning a successful run.
type schedRunner struct {
	calls chan schedCall
	block func(ctx context.Context)
}

func newSchedRunner() *schedRunner { return &schedRunner{calls: make(chan schedCall, 1000)} }

func (r *schedRunner) run(ctx context.Context, f *engine.Flow, req engine.RunRequest) (*engine.Run, error) {
	c := schedCall{flow: f.ID, req: req}
	if len(req.Items) == 1 {
		if ts, ok := req.Items[0]["timestamp"].(string); ok {
			c.at, _ = time.Parse(time.RFC3339Nano, ts)
		}
	}
	r.calls <- c
	if r.block != nil {
		r.block(ctx)
	}
	return &engine.Run{ID: engine.NewRunID(time.Now()), FlowID: f.ID, Trigger: req.Trigger, Mode: req.Mode, Status: engine.StatusSuccess}, nil
}

// next waits for the next call.
func (r *schedRunner) next(t *testing.T) schedCall {
	t.Helper()
	select {
	case c := <-r.calls:
		return c
	case <-time.After(schedWait):
		t.Fatal("no scheduled run started in time")
		return schedCall{}
	}
}

// none fails when a call is waiting.
func (r *schedRunner) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.calls:
		t.Fatalf("unexpected run of %s for tick %v", c.flow, c.at)
	default:
	}
}

// schedLogs is a slog handler that passes the records with one message to a channel.
type schedLogs struct {
	msg string
	ch  chan slog.Record
}

func newSchedLogs(msg string) *schedLogs {
	return &schedLogs{msg: msg, ch: make(chan slog.Record, 1000)}
}

func (h *schedLogs) Enabled(context.Context, slog.Level) bool { return true }
func (h *schedLogs) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *schedLogs) WithGroup(string) slog.Handler            { return h }

func (h *schedLogs) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- r.Clone():
		default:
		}
	}
	return nil
}

// next waits for the next record and returns its attributes.
func (h *schedLogs) next(t *testing.T) map[string]slog.Value {
	t.Helper()
	select {
	case r := <-h.ch:
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
		return attrs
	case <-time.After(schedWait):
		t.Fatalf("no %q logged in time", h.msg)
		return nil
	}
}

func (h *schedLogs) drain() {
	for {
		select {
		case <-h.ch:
		default:
			return
		}
	}
}

// schedFlow loads a flow whose trigger "Every" is a scheduleTrigger with the given parameters.
func schedFlow(t *testing.T, id, params string) *engine.Flow {
	t.Helper()
	src := fmt.Sprintf(`{
	"id": %q, "name": "scheduled", "settings": {"timezone": "UTC"},
	"nodes": [
		{"name": "Every", "type": "scheduleTrigger", "parameters": %s},
		{"name": "Done", "type": "noOp"}
	],
	"connections": {"Every": ["Done"]}
}`, id, params)
	f, probs := (&engine.Loader{Registry: nodes.NewRegistry()}).Load(id+".json", []byte(src))
	if f == nil {
		t.Fatalf("load flow: %v", probs)
	}
	return f
}

// schedStore opens a real store in a temporary directory, closed when the test ends (after
// the scheduler stops: cleanups run last first).
func schedStore(t *testing.T) *storage.SQLite {
	t.Helper()
	st, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "flowd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// startScheduler makes a scheduler on a new store and stops it when the test ends.
func startScheduler(t *testing.T, r *schedRunner, logs slog.Handler, now func() time.Time) (*scheduler, *storage.SQLite) {
	t.Helper()
	st := schedStore(t)
	if logs == nil {
		logs = slog.DiscardHandler
	}
	s := newScheduler(r.run, st, slog.New(logs), now)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), schedWait)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return s, st
}

func readState(t *testing.T, st *storage.SQLite, flowID, trigger string) storage.ScheduleState {
	t.Helper()
	got, ok, err := st.ScheduleState(context.Background(), flowID, trigger)
	if err != nil || !ok {
		t.Fatalf("schedule state of %s/%s: ok %v, err %v", flowID, trigger, ok, err)
	}
	return got
}

func TestSchedulerIntervalFiresRepeatedly(t *testing.T) {
	r := newSchedRunner()
	s, _ := startScheduler(t, r, nil, nil)
	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "tick", `{"interval": "1s"}`)})
	s.Start()
	var ticks []time.Time
	for range 3 {
		c := r.next(t)
		if c.flow != "tick" || c.req.Mode != "schedule" || c.req.Trigger != "Every" || len(c.req.Items) != 1 {
			t.Fatalf("run of %s with request %+v", c.flow, c.req)
		}
		if c.req.Items[0]["timezone"] != "UTC" {
			t.Errorf("item %v, want the schedule's zone UTC", c.req.Items[0])
		}
		ticks = append(ticks, c.at)
	}
	for i, at := range ticks {
		if !at.Equal(at.Truncate(time.Second)) {
			t.Errorf("tick %v is not the scheduled whole second", at)
		}
		if i > 0 && at.Sub(ticks[i-1]) != time.Second {
			t.Errorf("ticks %v: want one second apart", ticks)
		}
	}
}

func TestSchedulerSavesStateAfterFire(t *testing.T) {
	r := newSchedRunner()
	s, st := startScheduler(t, r, nil, nil)
	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "tick", `{"interval": "1s"}`)})
	added := readState(t, st, "tick", "Every")
	if added.Spec != "interval:1s" || added.NextFire.IsZero() {
		t.Fatalf("state after Apply %+v, want spec interval:1s and a next fire", added)
	}
	s.Start()
	c := r.next(t) // the state is saved before the run starts
	got := readState(t, st, "tick", "Every")
	if !got.LastFire.Equal(c.at) {
		t.Errorf("last fire %v, want the tick %v", got.LastFire, c.at)
	}
	if next := c.at.Add(time.Second); got.NextFire.Before(next) || !got.NextFire.Equal(got.NextFire.Truncate(time.Second)) {
		t.Errorf("next fire %v, want a whole second from %v on", got.NextFire, next)
	}
}

func TestSchedulerSkipsTicksWhileRunning(t *testing.T) {
	r := newSchedRunner()
	release := make(chan struct{})
	var runs atomic.Int32
	r.block = func(ctx context.Context) {
		if runs.Add(1) == 1 { // only the first run hangs
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}
	skips := newSchedLogs("schedule tick skipped")
	s, st := startScheduler(t, r, skips, nil)
	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "slow", `{"interval": "1s"}`)})
	s.Start()
	first := r.next(t)

	for range 2 {
		a := skips.next(t)
		if a["flow"].String() != "slow" || a["trigger"].String() != "Every" {
			t.Fatalf("skip logged for %v/%v", a["flow"], a["trigger"])
		}
	}
	r.none(t)

	// skippedAfter waits for a tick later than t to be skipped.
	skippedAfter := func(tt *testing.T, t time.Time) {
		tt.Helper()
		for !skips.next(tt)["tick"].Time().After(t) {
		}
	}
	t.Run("guard survives a reload that keeps the trigger", func(t *testing.T) {
		s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "slow", `{"interval": "1s"}`)})
		skippedAfter(t, time.Now())
		r.none(t)
	})
	t.Run("guard survives a reload that changes the schedule", func(t *testing.T) {
		s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "slow", `{"interval": "2s"}`)})
		skippedAfter(t, time.Now())
		r.none(t)
	})

	// Stop while the run hangs, then let it end: the latest skipped tick is stored as dealt
	// with, and nothing fires after Stop.
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(context.Background()) }()
	<-s.stopping.Done()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a run was in progress", err)
	default:
	}
	skips.drain()
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(schedWait):
		t.Fatal("Stop did not return after the run ended")
	}
	r.none(t)
	got := readState(t, st, "slow", "Every")
	if !got.LastFire.After(first.at) || got.LastFire.Unix()%2 != 0 || got.Spec != "interval:2s" {
		t.Errorf("state %+v: want the latest skipped tick of the 2s schedule after the first run's tick %v", got, first.at)
	}
}

func TestSchedulerApplyReplacesChangedSpec(t *testing.T) {
	r := newSchedRunner()
	s, st := startScheduler(t, r, nil, nil)
	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "edit", `{"interval": "1s"}`)})
	s.Start()
	r.next(t)

	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "edit", `{"interval": "2s"}`)})
	applied := time.Now()
	if got := readState(t, st, "edit", "Every"); got.Spec != "interval:2s" {
		t.Errorf("stored spec %q, want interval:2s", got.Spec)
	}
	if next, ok := s.NextFire("edit", "Every"); !ok || next.Unix()%2 != 0 {
		t.Errorf("NextFire = %v, %v; want an even second", next, ok)
	}
	// Runs of the old schedule already under way may still report; every tick after the
	// Apply must be on the new cadence: even seconds, two apart.
	var ticks []time.Time
	for len(ticks) < 2 {
		c := r.next(t)
		if !c.at.After(applied) {
			continue
		}
		if c.at.Unix()%2 != 0 {
			t.Fatalf("tick %v after the edit: the old 1s schedule still fires", c.at)
		}
		ticks = append(ticks, c.at)
	}
	if d := ticks[1].Sub(ticks[0]); d != 2*time.Second {
		t.Errorf("ticks %v: %v apart, want 2s", ticks, d)
	}
}

func TestSchedulerRemovingFlowStopsTrigger(t *testing.T) {
	r := newSchedRunner()
	s, _ := startScheduler(t, r, nil, nil)
	a, b := schedFlow(t, "a", `{"interval": "1s"}`), schedFlow(t, "b", `{"interval": "1s"}`)
	s.Apply(context.Background(), []*engine.Flow{a, b})
	s.Start()
	seen := map[string]bool{}
	for !seen["a"] || !seen["b"] {
		seen[r.next(t).flow] = true
	}

	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "b", `{"interval": "1s"}`)})
	removed := time.Now()
	if _, ok := s.NextFire("a", "Every"); ok {
		t.Error("NextFire of the removed flow answers")
	}
	if _, ok := s.NextFire("b", "Every"); !ok {
		t.Error("NextFire of the kept flow does not answer")
	}
	// Both flows tick on the same seconds: by b's second tick after the removal, a would
	// have fired too.
	for n := 0; n < 2; {
		c := r.next(t)
		if !c.at.After(removed) {
			continue
		}
		if c.flow == "a" {
			t.Fatalf("removed flow fired for tick %v", c.at)
		}
		n++
	}
}

func TestSchedulerCatchUp(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	clock := func() time.Time { return now }
	minute := func(m int) time.Time {
		return time.Date(2026, 3, 1, 11, 50, 0, 0, time.UTC).Add(time.Duration(m) * time.Minute)
	}
	lastTen := make([]time.Time, 10)
	for i := range lastTen {
		lastTen[i] = minute(i + 1) // 11:51 … 12:00
	}
	stored := storage.ScheduleState{Spec: "interval:1m0s", LastFire: now.Add(-10 * time.Minute), NextFire: now.Add(-9*time.Minute - 30*time.Second)}
	tests := []struct {
		name     string
		params   string
		stored   *storage.ScheduleState
		want     []time.Time // catch-up ticks, in order
		wantLast time.Time   // stored last fire afterwards
	}{
		{"none drops the missed ticks", `{"interval": "1m"}`, &stored, nil, minute(10)},
		{"last runs once for the latest", `{"interval": "1m", "catchUp": "last"}`, &stored, lastTen[9:], minute(10)},
		{"all runs each missed tick", `{"interval": "1m", "catchUp": "all"}`, &stored, lastTen, minute(10)},
		{"all keeps the latest maxCatchUp", `{"interval": "1m", "catchUp": "all", "maxCatchUp": 3}`, &stored, lastTen[7:], minute(10)},
		{"changed schedule has no catch-up", `{"interval": "2m", "catchUp": "all"}`, &stored, nil, now},
		{"new trigger has no catch-up", `{"interval": "1m", "catchUp": "all"}`, nil, nil, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newSchedRunner()
			decisions := newSchedLogs("schedule catch-up")
			s, st := startScheduler(t, r, decisions, clock)
			ctx := context.Background()
			if tt.stored != nil {
				if err := st.SaveScheduleState(ctx, "late", "Every", *tt.stored); err != nil {
					t.Fatal(err)
				}
			}
			f := schedFlow(t, "late", tt.params)
			s.Apply(ctx, []*engine.Flow{f})

			var got []time.Time
			for range tt.want {
				c := r.next(t)
				if c.req.Mode != "schedule" || c.req.Trigger != "Every" || c.req.Items[0]["timestamp"] != engine.FormatTime(c.at) {
					t.Errorf("catch-up request %+v", c.req)
				}
				got = append(got, c.at)
			}
			if len(tt.want) > 0 {
				a := decisions.next(t)
				if a["missed"].String() != "10" || a["runs"].Int64() != int64(len(tt.want)) {
					t.Errorf("catch-up logged missed=%v runs=%v, want 10 and %d", a["missed"], a["runs"], len(tt.want))
				}
			}
			// Catch-up is for the first Apply only.
			s.Apply(ctx, []*engine.Flow{schedFlow(t, "late", tt.params)})
			stop, cancel := context.WithTimeout(ctx, schedWait)
			defer cancel()
			if err := s.Stop(stop); err != nil { // waits for the catch-up goroutine
				t.Fatal(err)
			}
			r.none(t)
			if !slices.EqualFunc(got, tt.want, time.Time.Equal) {
				t.Errorf("catch-up ticks %v, want %v", got, tt.want)
			}
			state := readState(t, st, "late", "Every")
			if state.Spec != scheduleSpec(f.Triggers[0].Impl.(*nodes.Schedule)) || !state.LastFire.Equal(tt.wantLast) {
				t.Errorf("stored %+v, want last fire %v", state, tt.wantLast)
			}
			if next := f.Triggers[0].Impl.(*nodes.Schedule).Next(now); !state.NextFire.Equal(next) {
				t.Errorf("stored next fire %v, want %v", state.NextFire, next)
			}
		})
	}
}

func TestSchedulerStopWaitsForRunningJob(t *testing.T) {
	r := newSchedRunner()
	release := make(chan struct{})
	var finished, cancelled atomic.Bool
	r.block = func(ctx context.Context) {
		select {
		case <-release:
		case <-ctx.Done():
			cancelled.Store(true)
		}
		finished.Store(true)
	}
	s, _ := startScheduler(t, r, nil, nil)
	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "wait", `{"interval": "1s"}`)})
	s.Start()
	r.next(t)

	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(context.Background()) }()
	<-s.stopping.Done()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a run was in progress", err)
	default:
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(schedWait):
		t.Fatal("Stop did not return after the run ended")
	}
	if !finished.Load() || cancelled.Load() {
		t.Errorf("run finished %v, cancelled %v; want finished, not cancelled", finished.Load(), cancelled.Load())
	}
	if _, ok := s.NextFire("wait", "Every"); ok {
		t.Error("NextFire answers after Stop")
	}
	r.none(t)
}

func TestSchedulerStopCancelsAtDeadline(t *testing.T) {
	r := newSchedRunner()
	var returned atomic.Bool
	r.block = func(ctx context.Context) {
		<-ctx.Done() // a run that only ends when cancelled
		returned.Store(true)
	}
	s, _ := startScheduler(t, r, nil, nil)
	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "hang", `{"interval": "1s"}`)})
	s.Start()
	r.next(t)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want the deadline's error", err)
	}
	if !returned.Load() {
		t.Error("Stop returned before the cancelled run did")
	}
}

func TestSchedulerNextFire(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	s, _ := startScheduler(t, newSchedRunner(), nil, func() time.Time { return now })
	berlin := `{"id": "berlin", "name": "b", "nodes": [
		{"name": "Nine", "type": "scheduleTrigger", "parameters": {"cron": "0 9 * * *", "timezone": "Europe/Berlin"}},
		{"name": "Off", "type": "scheduleTrigger", "disabled": true, "parameters": {"interval": "1m"}},
		{"name": "Done", "type": "noOp"}
	], "connections": {"Nine": ["Done"], "Off": ["Done"]}}`
	f, probs := (&engine.Loader{Registry: nodes.NewRegistry()}).Load("berlin.json", []byte(berlin))
	if f == nil {
		t.Fatal(probs)
	}
	s.Apply(context.Background(), []*engine.Flow{f, schedFlow(t, "minutely", `{"interval": "1m"}`)})
	tests := []struct {
		flow, trigger string
		want          time.Time // zero: not scheduled
	}{
		{"minutely", "Every", time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)},
		{"berlin", "Nine", time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)},
		{"berlin", "Off", time.Time{}},
		{"berlin", "Done", time.Time{}},
		{"nope", "Every", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.flow+"/"+tt.trigger, func(t *testing.T) {
			got, ok := s.NextFire(tt.flow, tt.trigger)
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("NextFire = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

func TestSchedulerMissedTicks(t *testing.T) {
	interval := func(d time.Duration) func(time.Time) time.Time {
		return func(t time.Time) time.Time { return t.Truncate(d).Add(d) }
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		next      func(time.Time) time.Time
		after, to time.Time
		keep      int
		want      []time.Time
		wantN     int
		wantExact bool
	}{
		{"none due", interval(time.Minute), t0, t0.Add(59 * time.Second), 5, nil, 0, true},
		{"fewer than keep", interval(time.Minute), t0, t0.Add(3 * time.Minute), 5,
			[]time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute), t0.Add(3 * time.Minute)}, 3, true},
		{"latest of many", interval(time.Minute), t0, t0.Add(100*time.Minute + 30*time.Second), 2,
			[]time.Time{t0.Add(99 * time.Minute), t0.Add(100 * time.Minute)}, 100, true},
		{"too many to walk", interval(time.Second), t0, t0.Add(72 * time.Hour), 3,
			[]time.Time{t0.Add(72*time.Hour - 2*time.Second), t0.Add(72*time.Hour - time.Second), t0.Add(72 * time.Hour)}, catchUpScan, false},
		{"never ticks", func(time.Time) time.Time { return time.Time{} }, t0, t0.Add(time.Hour), 1, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, exact := missedTicks(tt.next, tt.after, tt.to, tt.keep)
			if !slices.EqualFunc(got, tt.want, time.Time.Equal) || n != tt.wantN || exact != tt.wantExact {
				t.Errorf("missedTicks = %v, %d, %v; want %v, %d, %v", got, n, exact, tt.want, tt.wantN, tt.wantExact)
			}
		})
	}
}

// TestSchedulerPauseAndResume: a paused scheduler (an instance without the schedule lease)
// fires nothing and writes no schedule state, yet keeps the flows it is given; Resume applies
// them as a first Apply, so the catch-up policy decides about the ticks missed since the
// stored last fire, whoever stored it.
func TestSchedulerPauseAndResume(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	r := newSchedRunner()
	s, st := startScheduler(t, r, nil, func() time.Time { return *clock.Load() })
	ctx := context.Background()
	// Another instance fired 11:50 and stored it.
	stored := storage.ScheduleState{Spec: "interval:1m0s", LastFire: now.Add(-10*time.Minute - 30*time.Second)}
	if err := st.SaveScheduleState(ctx, "late", "Every", stored); err != nil {
		t.Fatal(err)
	}

	s.Pause() // as serve starts in a cluster, before the first Apply
	s.Apply(ctx, []*engine.Flow{schedFlow(t, "late", `{"interval": "1m", "catchUp": "last"}`)})
	s.Start()
	if n := len(s.cron.Entries()); n != 0 {
		t.Fatalf("%d cron entries while paused", n)
	}
	if next, ok := s.NextFire("late", "Every"); !ok || !next.Equal(time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)) {
		t.Errorf("NextFire while paused = %v, %v; want 12:01, when the cluster fires it", next, ok)
	}
	if got := readState(t, st, "late", "Every"); !got.LastFire.Equal(stored.LastFire) {
		t.Fatalf("paused Apply stored %+v", got)
	}
	r.none(t)

	t.Run("resume catches up from the stored state", func(t *testing.T) {
		s.Resume(ctx)
		if c := r.next(t); !c.at.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("catch-up run for %v, want the latest missed tick 12:00", c.at)
		}
		if n := len(s.cron.Entries()); n != 1 {
			t.Fatalf("%d cron entries after Resume, want 1", n)
		}
		// A tick due while that run still holds the trigger's guard would be skipped.
		awaitIdle(t, s, "late", "Every")
	})
	t.Run("pause removes the entries, resume plans afresh", func(t *testing.T) {
		s.Pause()
		if n := len(s.cron.Entries()); n != 0 {
			t.Fatalf("%d cron entries after Pause", n)
		}
		// Three minutes pass while another instance holds the lease and fires nothing.
		later := now.Add(3 * time.Minute)
		clock.Store(&later)
		s.Resume(ctx)
		if c := r.next(t); !c.at.Equal(time.Date(2026, 3, 1, 12, 3, 0, 0, time.UTC)) {
			t.Fatalf("catch-up run for %v, want 12:03", c.at)
		}
	})
	t.Run("resume applies the flows given while paused", func(t *testing.T) {
		s.Pause()
		s.Apply(ctx, []*engine.Flow{schedFlow(t, "other", `{"interval": "1h"}`)})
		if _, ok := s.NextFire("late", "Every"); ok {
			t.Error("a trigger removed while paused still has a next fire")
		}
		s.Resume(ctx)
		if _, ok := s.NextFire("other", "Every"); !ok || len(s.cron.Entries()) != 1 {
			t.Errorf("after Resume: next fire %v, %d entries; want the new flow's trigger only", ok, len(s.cron.Entries()))
		}
		if got := readState(t, st, "other", "Every"); got.Spec != "interval:1h0m0s" {
			t.Errorf("new trigger's state %+v", got)
		}
	})
	r.none(t)
}

// TestSchedulerClaimsEachTick: with a claim function (a cluster's ClaimTick) a tick fires only
// when claimed; one claimed elsewhere, or whose claim fails, is not fired at all.
func TestSchedulerClaimsEachTick(t *testing.T) {
	r := newSchedRunner()
	elsewhere := newSchedLogs("schedule tick not fired: another instance fired it")
	failed := newSchedLogs("schedule tick not fired: cannot claim it")
	s, st := startScheduler(t, r, fanout{elsewhere, failed}, nil)
	var (
		claims  atomic.Int32
		claimed = make(chan time.Time, 100)
	)
	s.claim = func(ctx context.Context, flowID, trigger string, tick time.Time) (bool, error) {
		if flowID != "tick" || trigger != "Every" {
			return false, fmt.Errorf("claim of %s/%s", flowID, trigger)
		}
		claimed <- tick
		switch claims.Add(1) {
		case 1:
			return false, nil
		case 2:
			return false, errors.New("database unreachable")
		}
		return true, nil
	}
	s.Apply(context.Background(), []*engine.Flow{schedFlow(t, "tick", `{"interval": "1s"}`)})
	s.Start()
	c := r.next(t)
	if claims.Load() < 3 {
		t.Fatalf("run started after %d claims, want the third to be the first fired", claims.Load())
	}
	first, second, third := <-claimed, <-claimed, <-claimed
	if !c.at.Equal(third) || !second.After(first) || !third.After(second) {
		t.Fatalf("fired %v; claimed %v, %v, %v", c.at, first, second, third)
	}
	if a := elsewhere.next(t); !a["tick"].Time().Equal(first) {
		t.Errorf("logged the tick %v as fired elsewhere, want %v", a["tick"], first)
	}
	if a := failed.next(t); !a["tick"].Time().Equal(second) || a["err"].String() != "database unreachable" {
		t.Errorf("logged %v for the failed claim", a)
	}
	if got := readState(t, st, "tick", "Every"); got.LastFire.Before(third) {
		t.Errorf("stored last fire %v, want the fired tick %v or later", got.LastFire, third)
	}
}

// fanout passes each record to every handler.
type fanout []slog.Handler

func (f fanout) Enabled(context.Context, slog.Level) bool { return true }
func (f fanout) WithAttrs([]slog.Attr) slog.Handler       { return f }
func (f fanout) WithGroup(string) slog.Handler            { return f }

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range f {
		_ = h.Handle(ctx, r)
	}
	return nil
}

// awaitIdle waits until no run of the trigger holds its overlap guard.
func awaitIdle(t *testing.T, s *scheduler, flow, node string) {
	t.Helper()
	eventually(t, "the trigger's run to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		g := s.guards[triggerKey{flow, node}]
		return g == nil || !g.running
	})
}
