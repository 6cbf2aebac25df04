package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/storage"
)

// scheduleStore keeps schedule triggers' fire times between restarts (storage.SQLite does).
type scheduleStore interface {
	// ScheduleState returns the trigger's stored state, and false when there is none.
	ScheduleState(ctx context.Context, flowID, trigger string) (storage.ScheduleState, bool, error)
	// SaveScheduleState replaces the trigger's stored state.
	SaveScheduleState(ctx context.Context, flowID, trigger string, st storage.ScheduleState) error
}

// scheduler fires the schedule triggers of the live flows, on one robfig/cron instance.
//
// Overlap: one fire at a time per trigger. A tick that comes while the trigger's previous run
// (or its catch-up) still runs is skipped and logged, not queued. The guard is keyed by flow
// id and trigger name and lives outside the cron entries, so a reload that keeps, edits or
// even drops and restores a trigger does not reset it.
//
// Durability: before each run the scheduler stores the tick as the trigger's last fire and
// the tick after as its next fire. A run that crashes the process is therefore not fired
// again, and a restart knows which ticks it missed; the trigger's catchUp policy says what
// to do about them (see Apply). Ticks skipped because the previous run still ran count as
// dealt with: they are stored as the last fire once that run ends. A trigger added or
// changed stores the time it took effect as its last fire, so a restart before its first
// tick still knows what it missed.
//
// Cluster: when several instances share the store, only the one holding the schedule lease
// fires (see cluster.go). The others are paused: Apply keeps their flows but schedules
// nothing, and Resume applies them — as a first Apply, so the catch-up policy decides about
// the ticks missed since the stored last fire. With claim set, every tick, catch-up ones too,
// is claimed before it fires, so that a tick fires at most once even while two instances
// briefly both think they hold the lease.
//
// A scheduler is safe for concurrent use. Apply may be called before or after Start; Stop
// ends it for good.
type scheduler struct {
	run   func(ctx context.Context, f *engine.Flow, req engine.RunRequest) (*engine.Run, error)
	state scheduleStore
	log   *slog.Logger
	now   func() time.Time
	cron  *cron.Cron
	// claim, when set, tells whether this process fires the tick: false when another
	// already did. It is set before Start and not changed after.
	claim func(ctx context.Context, flowID, trigger string, tick time.Time) (bool, error)

	// ctx is the runs' context, cancelled when Stop's deadline passes. stopping is done as
	// soon as Stop is called: no tick or catch-up run starts after it.
	ctx      context.Context
	cancel   context.CancelFunc
	stopping context.Context
	halt     context.CancelFunc
	// catchUps counts the catch-up goroutines; cron counts its own jobs.
	catchUps sync.WaitGroup

	// saveMu orders the writes of schedule state, so that a trigger's state as Apply sets it
	// is stored before that of any of its ticks; it also orders Apply, Pause and Resume. It
	// is never taken while holding mu.
	saveMu sync.Mutex

	mu       sync.Mutex
	triggers map[triggerKey]*trigger
	guards   map[triggerKey]*guard
	// seen holds every trigger Apply has scheduled in this process; catch-up happens only
	// the first time.
	seen map[triggerKey]bool
	// flows is what the latest Apply was given and wanted its enabled schedule triggers,
	// kept while paused too.
	flows   []*engine.Flow
	wanted  map[triggerKey]*nodes.Schedule
	paused  bool
	started bool
	stopped bool
}

// triggerKey names one schedule trigger: the flow's id and the trigger node's name.
type triggerKey struct{ flow, node string }

// guard is the overlap guard of one trigger. It outlives reloads: it is dropped only when
// the trigger is gone and nothing of it runs.
type guard struct {
	running bool
	// skipped is the latest tick skipped while the run holding the guard ran.
	skipped time.Time
}

// trigger is one scheduled trigger: one cron entry. It is replaced, not edited, when its
// schedule changes; a reload that keeps the schedule swaps in the new flow version.
type trigger struct {
	key   triggerKey
	spec  string
	sched *nodes.Schedule // timing, fixed by spec
	id    cron.EntryID
	log   *slog.Logger

	// flow and node are the latest versions of the flow and the trigger node; guarded by
	// scheduler.mu.
	flow *engine.Flow
	node *nodes.Schedule

	// fires hands each cron job its tick (see Next).
	fires   chan time.Time
	mu      sync.Mutex
	pending time.Time // the tick Next returned last
}

// Next makes the trigger a cron.Schedule. cron calls Next once when the entry starts and then
// once each time the job has been started, with the current time; so a pending tick at or
// before that time is the one just fired, and the job started for it receives it on fires.
// That is how a run learns its scheduled time, not the time its goroutine got to run.
func (t *trigger) Next(now time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.pending.IsZero() && !t.pending.After(now) {
		select {
		case t.fires <- t.pending:
		default: // cannot happen: each value sent has a job started to take it
			t.log.Error("schedule tick lost: too many ticks waiting for their job", "flow", t.key.flow, "trigger", t.key.node, "tick", t.pending)
		}
	}
	t.pending = t.sched.Next(now)
	return t.pending
}

// stateTimeout bounds one write of schedule state from a tick.
const stateTimeout = 10 * time.Second

// newScheduler returns a scheduler that starts runs with run, keeps fire times in state and
// reads the time from now (nil: time.Now; cron's own timer always uses the real clock). A nil
// logger means slog.Default(). Nothing fires before Apply and Start.
func newScheduler(run func(ctx context.Context, f *engine.Flow, req engine.RunRequest) (*engine.Run, error), state scheduleStore, logger *slog.Logger, now func() time.Time) *scheduler {
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	cl := cronLogger{logger}
	s := &scheduler{
		run:      run,
		state:    state,
		log:      logger,
		now:      now,
		cron:     cron.New(cron.WithLogger(cl), cron.WithChain(cron.Recover(cl))),
		triggers: map[triggerKey]*trigger{},
		guards:   map[triggerKey]*guard{},
		seen:     map[triggerKey]bool{},
		wanted:   map[triggerKey]*nodes.Schedule{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.stopping, s.halt = context.WithCancel(context.Background())
	return s
}

// cronLogger sends robfig/cron's logs to slog: its routine messages at debug level, its
// errors (a recovered panic, with the stack) at error level.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append([]any{"err", err}, kv...)...)
}

// wantedTrigger is a schedule trigger of a flow given to Apply.
type wantedTrigger struct {
	key   triggerKey
	spec  string
	flow  *engine.Flow
	sched *nodes.Schedule
}

// scheduleTriggers lists the enabled schedule triggers of flows, in order.
func scheduleTriggers(flows []*engine.Flow) []wantedTrigger {
	var out []wantedTrigger
	for _, f := range flows {
		for _, n := range f.Triggers {
			sched, ok := n.Impl.(*nodes.Schedule)
			if !ok || n.Disabled {
				continue
			}
			out = append(out, wantedTrigger{key: triggerKey{f.ID, n.Name}, spec: scheduleSpec(sched), flow: f, sched: sched})
		}
	}
	return out
}

// scheduleSpec is the definition of a schedule's timing as stored with its state: two
// schedules with one spec tick at the same times.
func scheduleSpec(s *nodes.Schedule) string {
	if s.Interval > 0 {
		return "interval:" + s.Interval.String()
	}
	return "cron:" + s.Cron + "@" + s.Location.String()
}

// change is a trigger Apply added or replaced.
type change struct {
	tr      *trigger
	oldSpec string // "" for a trigger added
	next    time.Time
	// first marks a trigger's first Apply in this process, which plans catch-up.
	first bool
	plan  catchUpPlan
	// keepState is set when the stored state could not be read: it is left as it is.
	keepState bool
}

// Apply makes flows the complete set of scheduled flows; it is called at start and on every
// reload. A trigger that is new gets a cron entry; one whose schedule changed gets a new
// entry in place of the old, whose pending ticks are dropped; one that kept its schedule
// keeps its entry and fires the new flow version from its next tick; one that is gone stops
// firing (a run of it in progress goes on). Disabled triggers are not scheduled. Each
// trigger's overlap guard is kept throughout.
//
// The first time a trigger is applied in this process, Apply compares it with its stored
// state. When the stored schedule is the same and has a last fire, the ticks since then that
// are already due were missed while flowd was down, and the trigger's catchUp policy decides:
// "none" drops them, "last" runs once for the latest, "all" runs once for each of the latest
// MaxCatchUp, oldest first. Catch-up runs start at once, one after the other in a goroutine
// that holds the trigger's guard (so live ticks meanwhile are skipped) and that Stop waits
// for. A trigger that is new, or whose schedule changed since the stored state, has no
// catch-up.
//
// Apply reads and writes schedule state with ctx; failures are logged, not returned. After
// Stop, Apply does nothing; while paused, it only keeps flows for Resume.
func (s *scheduler) Apply(ctx context.Context, flows []*engine.Flow) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.apply(ctx, flows)
}

// apply is Apply with saveMu held.
func (s *scheduler) apply(ctx context.Context, flows []*engine.Flow) {
	want := scheduleTriggers(flows)
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.flows = flows
	clear(s.wanted)
	for _, w := range want {
		s.wanted[w.key] = w.sched
	}
	if s.paused {
		s.mu.Unlock()
		return
	}
	var fresh []triggerKey
	for _, w := range want {
		if !s.seen[w.key] {
			fresh = append(fresh, w.key)
		}
	}
	s.mu.Unlock()

	stored := map[triggerKey]storage.ScheduleState{}
	unreadable := map[triggerKey]bool{}
	for _, key := range fresh {
		st, ok, err := s.state.ScheduleState(ctx, key.flow, key.node)
		if err != nil {
			s.log.Error("schedule catch-up skipped: cannot read the stored state", "flow", key.flow, "trigger", key.node, "err", err)
			unreadable[key] = true
			continue
		}
		if ok {
			stored[key] = st
		}
	}

	now := s.now()
	s.mu.Lock()
	if s.stopped || s.paused {
		s.mu.Unlock()
		return
	}
	keep := make(map[triggerKey]bool, len(want))
	for _, w := range want {
		keep[w.key] = true
	}
	removed := s.removeLocked(keep)
	var changes []change
	for _, w := range want {
		old := s.triggers[w.key]
		if old != nil && old.spec == w.spec {
			old.flow, old.node = w.flow, w.sched
			continue
		}
		g := s.guards[w.key]
		if g == nil {
			g = &guard{}
			s.guards[w.key] = g
		}
		ch := change{next: w.sched.Next(now), plan: catchUpPlan{lastFire: now}}
		if old != nil {
			s.cron.Remove(old.id)
			g.skipped = time.Time{} // ticks of the old schedule
			ch.oldSpec = old.spec
		}
		if !s.seen[w.key] && !unreadable[w.key] {
			st, ok := stored[w.key]
			ch.first, ch.plan = true, planCatchUp(w.sched, w.spec, st, ok, now)
			// A trigger never applied before has no run holding its guard.
			if len(ch.plan.runs) > 0 && !g.running {
				g.running = true
				s.catchUps.Add(1)
			} else {
				ch.plan.runs = nil
			}
		}
		s.seen[w.key] = true
		ch.keepState = unreadable[w.key]
		tr := &trigger{
			key: w.key, spec: w.spec, sched: w.sched, log: s.log,
			flow: w.flow, node: w.sched,
			fires: make(chan time.Time, 64),
		}
		tr.id = s.cron.Schedule(tr, cron.FuncJob(func() { s.tick(tr) }))
		s.triggers[w.key] = tr
		ch.tr = tr
		changes = append(changes, ch)
	}
	s.mu.Unlock()

	for _, tr := range removed {
		s.log.Info("schedule removed", "flow", tr.key.flow, "trigger", tr.key.node, "spec", tr.spec)
	}
	for _, ch := range changes {
		tr := ch.tr
		if !ch.keepState {
			st := storage.ScheduleState{Spec: tr.spec, LastFire: ch.plan.lastFire, NextFire: ch.next}
			if err := s.state.SaveScheduleState(ctx, tr.key.flow, tr.key.node, st); err != nil {
				s.log.Error("save schedule state", "flow", tr.key.flow, "trigger", tr.key.node, "err", err)
			}
		}
		if ch.oldSpec != "" {
			s.log.Info("schedule changed", "flow", tr.key.flow, "trigger", tr.key.node, "from", ch.oldSpec, "to", tr.spec, "next", ch.next)
		} else {
			s.log.Info("schedule added", "flow", tr.key.flow, "trigger", tr.key.node, "spec", tr.spec, "next", ch.next)
		}
		if ch.first {
			ch.plan.logTo(s.log, tr)
		}
		if len(ch.plan.runs) > 0 {
			go s.catchUp(tr, ch.plan.runs)
		}
	}
}

// removeLocked removes the cron entries of the triggers not in keep, and their guards unless
// a run holds them. It returns the triggers removed; s.mu is held.
func (s *scheduler) removeLocked(keep map[triggerKey]bool) []*trigger {
	var removed []*trigger
	for key, tr := range s.triggers {
		if keep[key] {
			continue
		}
		s.cron.Remove(tr.id)
		delete(s.triggers, key)
		if g := s.guards[key]; g != nil && !g.running {
			delete(s.guards, key)
		}
		removed = append(removed, tr)
	}
	return removed
}

// Pause stops firing until Resume: every trigger's cron entry is removed, as if its flow were
// gone; runs in progress go on, and catch-up runs stop before their next tick. Apply meanwhile
// only keeps the flows. Pause on a paused or stopped scheduler does nothing.
func (s *scheduler) Pause() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if s.stopped || s.paused {
		s.mu.Unlock()
		return
	}
	s.paused = true
	removed := s.removeLocked(nil)
	clear(s.seen) // Resume is a first Apply again: it plans catch-up from the stored state
	s.mu.Unlock()
	s.log.Debug("schedules paused", "triggers", len(removed))
}

// Resume applies the flows of the latest Apply after Pause, reading and writing schedule
// state with ctx. Each trigger is applied as for the first time: its catch-up policy decides
// about the ticks since its stored last fire, which another instance may have written.
// Resume on a scheduler not paused, or stopped, does nothing.
func (s *scheduler) Resume(ctx context.Context) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if s.stopped || !s.paused {
		s.mu.Unlock()
		return
	}
	s.paused = false
	flows := s.flows
	s.mu.Unlock()
	s.log.Debug("schedules resumed", "flows", len(flows))
	s.apply(ctx, flows)
}

// catchUpPlan is what a trigger does about the ticks it missed while flowd was down.
type catchUpPlan struct {
	policy string
	// why explains a plan without catch-up; "" when the missed ticks were counted.
	why string
	// missed is how many ticks were missed: exactly, or at least that many when !exact.
	missed int
	exact  bool
	// runs are the ticks to run, oldest first.
	runs []time.Time
	// lastFire is what to store as the last fire now.
	lastFire time.Time
}

// planCatchUp decides, for a trigger applied for the first time in this process, what to do
// about the ticks since its stored last fire (st, when ok) that are due at now.
func planCatchUp(sched *nodes.Schedule, spec string, st storage.ScheduleState, ok bool, now time.Time) catchUpPlan {
	p := catchUpPlan{policy: sched.CatchUp, lastFire: now}
	switch {
	case !ok:
		p.why = "new trigger"
		return p
	case st.Spec != spec:
		p.why = "schedule changed since " + st.Spec
		return p
	case st.LastFire.IsZero():
		p.why = "no last fire stored"
		return p
	}
	keep := 1
	if p.policy == "all" {
		keep = max(1, sched.MaxCatchUp)
	}
	ticks, n, exact := missedTicks(sched.Next, st.LastFire, now, keep)
	p.missed, p.exact, p.lastFire = n, exact, st.LastFire
	if n == 0 {
		return p
	}
	switch p.policy {
	case "last", "all":
		p.runs = ticks // a run stores its tick as the last fire
	default: // none
		p.lastFire = ticks[len(ticks)-1]
	}
	return p
}

func (p catchUpPlan) logTo(l *slog.Logger, tr *trigger) {
	args := []any{"flow", tr.key.flow, "trigger", tr.key.node, "policy", p.policy}
	switch {
	case p.why != "":
		l.Debug("schedule catch-up: none", append(args, "why", p.why)...)
	case p.missed == 0:
		l.Debug("schedule catch-up: no tick missed", append(args, "lastFire", p.lastFire)...)
	default:
		missed := fmt.Sprint(p.missed)
		if !p.exact {
			missed = "more than " + missed
		}
		args = append(args, "missed", missed, "runs", len(p.runs))
		if p.exact {
			args = append(args, "dropped", p.missed-len(p.runs))
		}
		if len(p.runs) > 0 {
			args = append(args, "first", p.runs[0], "last", p.runs[len(p.runs)-1])
		}
		l.Info("schedule catch-up", args...)
	}
}

// catchUpScan bounds how many ticks missedTicks walks one by one, so that a frequent schedule
// after a long downtime is not counted tick by tick.
const catchUpScan = 100_000

// missedTicks returns the latest keep (at least 1) ticks of next in (after, upTo], oldest
// first, and how many ticks that span holds: exactly when exact, else at least n. When the
// span holds more ticks than it is worth walking, it looks at the later half first, which
// suffices as schedules tick at least a second apart.
func missedTicks(next func(time.Time) time.Time, after, upTo time.Time, keep int) (ticks []time.Time, n int, exact bool) {
	limit := max(catchUpScan, keep)
	var ring []time.Time // the latest keep ticks; ring[n%keep] is the oldest once full
	for t := next(after); !t.IsZero() && !t.After(upTo); t = next(t) {
		if n == limit {
			mid := after.Add(upTo.Sub(after) / 2)
			late, _, _ := missedTicks(next, mid, upTo, keep)
			if len(late) < keep {
				early, _, _ := missedTicks(next, after, mid, keep-len(late))
				late = append(early, late...)
			}
			return late, n, false
		}
		if len(ring) < keep {
			ring = append(ring, t)
		} else {
			ring[n%keep] = t
		}
		n++
	}
	if n <= keep {
		return ring, n, true
	}
	i := n % keep
	return append(ring[i:len(ring):len(ring)], ring[:i]...), n, true
}

// tick is the cron job of tr: it fires tr for the tick it was started for, unless the
// trigger's previous run still runs.
func (s *scheduler) tick(tr *trigger) {
	var at time.Time
	select {
	case at = <-tr.fires:
	case <-s.stopping.Done():
		return
	}
	s.mu.Lock()
	if s.stopped || s.triggers[tr.key] != tr {
		s.mu.Unlock()
		s.log.Debug("schedule tick dropped: the trigger was changed or removed, or flowd is stopping", "flow", tr.key.flow, "trigger", tr.key.node, "tick", at)
		return
	}
	g := s.guards[tr.key]
	if g.running {
		if at.After(g.skipped) {
			g.skipped = at
		}
		s.mu.Unlock()
		s.log.Warn("schedule tick skipped", "flow", tr.key.flow, "trigger", tr.key.node, "tick", at, "why", "the previous run of this trigger still runs")
		return
	}
	g.running = true
	flow, node := tr.flow, tr.node
	s.mu.Unlock()
	defer s.release(tr.key, at, true)
	s.fire(tr, flow, node, at, false)
}

// catchUp runs tr once for each tick, oldest first, then releases the guard Apply took for
// it. It stops early when flowd stops or the trigger is changed or removed.
func (s *scheduler) catchUp(tr *trigger, ticks []time.Time) {
	defer s.catchUps.Done()
	var (
		last     time.Time
		complete bool
	)
	defer func() { s.release(tr.key, last, complete) }()
	cron.Recover(cronLogger{s.log})(cron.FuncJob(func() {
		for i, at := range ticks {
			s.mu.Lock()
			stopped, current := s.stopped, s.triggers[tr.key] == tr
			flow, node := tr.flow, tr.node
			s.mu.Unlock()
			if stopped || !current {
				s.log.Info("schedule catch-up interrupted", "flow", tr.key.flow, "trigger", tr.key.node, "done", i, "left", len(ticks)-i, "stopping", stopped)
				return
			}
			s.fire(tr, flow, node, at, true)
			last = at
		}
		complete = true
	})).Run()
}

// fire claims the tick at (with claim set), stores it as tr's last fire, then runs flow for it
// and waits for the run to end. The run's context is the scheduler's, cancelled at Stop's
// deadline. A tick that cannot be claimed is not fired: at most once, rather than twice.
func (s *scheduler) fire(tr *trigger, flow *engine.Flow, node *nodes.Schedule, at time.Time, catchUp bool) {
	if s.claim != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), stateTimeout)
		mine, err := s.claim(ctx, flow.ID, tr.key.node, at)
		cancel()
		if err != nil {
			s.log.Error("schedule tick not fired: cannot claim it", "flow", flow.ID, "trigger", tr.key.node, "tick", at, "err", err)
			return
		}
		if !mine {
			s.log.Info("schedule tick not fired: another instance fired it", "flow", flow.ID, "trigger", tr.key.node, "tick", at)
			return
		}
	}
	s.save(tr, storage.ScheduleState{Spec: tr.spec, LastFire: at, NextFire: tr.sched.Next(later(s.now(), at))})
	s.log.Debug("schedule fired", "flow", flow.ID, "trigger", tr.key.node, "tick", at, "catchUp", catchUp)
	run, err := s.run(s.ctx, flow, engine.RunRequest{
		Trigger: tr.key.node,
		Mode:    "schedule",
		Items:   []engine.Item{node.Item(at)},
	})
	if err != nil {
		s.log.Error("scheduled run", "flow", flow.ID, "trigger", tr.key.node, "tick", at, "err", err)
		return
	}
	if run != nil {
		s.log.Info("scheduled run ended", "flow", flow.ID, "trigger", tr.key.node, "tick", at, "catchUp", catchUp, "run", run.ID, "status", run.Status)
	}
}

// release frees the guard of key after a run (or catch-up) whose last tick was last. When
// the holder completed and live ticks were skipped meanwhile, the latest of them is stored as
// the last fire: they were dealt with, and a restart must not take them for missed.
func (s *scheduler) release(key triggerKey, last time.Time, complete bool) {
	s.mu.Lock()
	g := s.guards[key]
	skipped := g.skipped
	g.running, g.skipped = false, time.Time{}
	tr := s.triggers[key]
	if tr == nil {
		delete(s.guards, key)
	}
	s.mu.Unlock()
	if tr == nil || !complete || !skipped.After(last) {
		return
	}
	s.save(tr, storage.ScheduleState{Spec: tr.spec, LastFire: skipped, NextFire: tr.sched.Next(later(s.now(), skipped))})
}

// save stores st as tr's state, unless tr has been replaced or removed meanwhile.
func (s *scheduler) save(tr *trigger, st storage.ScheduleState) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	current := s.triggers[tr.key] == tr
	s.mu.Unlock()
	if !current {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), stateTimeout)
	defer cancel()
	if err := s.state.SaveScheduleState(ctx, tr.key.flow, tr.key.node, st); err != nil {
		s.log.Error("save schedule state", "flow", tr.key.flow, "trigger", tr.key.node, "err", err)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Start starts firing the applied triggers on their schedules. It does not block; calls
// after the first, or after Stop, do nothing.
func (s *scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return
	}
	s.started = true
	s.cron.Start()
}

// Stop stops firing: no tick or catch-up run starts after it is called. Then it waits for the
// runs in progress until ctx is done; at that point it cancels their context and still waits
// for them to return, and reports ctx's error. Runs record their own cancellation. Later calls
// return nil at once.
func (s *scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	s.halt()

	cronDone := s.cron.Stop()
	done := make(chan struct{})
	go func() {
		<-cronDone.Done()
		s.catchUps.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.log.Warn("scheduled runs still going at the shutdown deadline: cancelling them")
	s.cancel()
	<-done
	return fmt.Errorf("cancelled scheduled runs at the deadline: %w", ctx.Err())
}

// NextFire returns when the flow's schedule trigger fires next, or false when it is not
// scheduled (unknown, disabled, a cron expression that never matches, or the scheduler is
// stopped). While paused it is when the trigger fires in the cluster. It satisfies
// web.ScheduleInfo.
func (s *scheduler) NextFire(flowID, trigger string) (time.Time, bool) {
	s.mu.Lock()
	sched := s.wanted[triggerKey{flowID, trigger}]
	stopped := s.stopped
	s.mu.Unlock()
	if sched == nil || stopped {
		return time.Time{}, false
	}
	next := sched.Next(s.now())
	return next, !next.IsZero()
}
