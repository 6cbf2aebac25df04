package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/web"
)

// Several flowd instances on one shared store (PostgreSQL) act as one engine. Each is a
// member: it beats its heartbeat into the store every beatInterval(ttl), carrying the flow
// versions it serves; the one holding the schedule lease fires the schedules, and every tick
// is claimed before it fires (scheduler.claim), so a tick fires once even across a handover;
// runs left running by instances whose heartbeat expired are marked crashed; flow versions
// that differ between live instances are logged and reported by /healthz. See
// docs/cluster.md.

// scheduleLease is the lease whose holder fires the schedule triggers.
const scheduleLease = "schedules"

// defaultClusterTTL is how long an instance counts as alive, and holds the schedule lease,
// after its latest heartbeat. A killed leader's schedules move to another instance at its
// first beat after the lease expired: ttl + beatInterval(ttl) after the kill at worst, and
// the next tick fires within a second after that for a per-second schedule — under the 5 s
// the cluster promises.
const defaultClusterTTL = 3 * time.Second

// minClusterTTL keeps a heartbeat from being asked more often than a database round trip
// under load can promise.
const minClusterTTL = time.Second

// beatInterval is how often a member beats: four times per ttl, so that one or two slow or
// failed beats do not cost an instance its lease or its life.
func beatInterval(ttl time.Duration) time.Duration { return ttl / 4 }

// scheduleGate is what a member drives on the scheduler as it gains and loses the schedule
// lease (*scheduler does).
type scheduleGate interface {
	Pause()
	Resume(ctx context.Context)
}

// member is this process's part in a cluster. Its beat runs in one goroutine from start until
// leave; Status, setFlows and resign may be called from any goroutine.
type member struct {
	coord engine.Coordinator
	sched scheduleGate
	log   *slog.Logger
	now   func() time.Time
	ttl   time.Duration

	// beatMu keeps resign from interleaving with a beat, which could take the lease again
	// just after resign released it.
	beatMu sync.Mutex

	mu   sync.Mutex
	self engine.Instance // Flows is replaced, never edited, by setFlows
	// leader is set while this instance holds the schedule lease, until leaseUntil.
	leader     bool
	leaseUntil time.Time
	resigned   bool
	status     web.ClusterStatus
	// differ describes the flow versions that differed at the latest comparison ("" when
	// none), so that only changes are logged.
	differ      string
	lastRecover time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// newMember returns a member named id that starts paused: the scheduler is paused until the
// first beat that wins the schedule lease. now nil means time.Now.
func newMember(coord engine.Coordinator, id string, sched scheduleGate, ttl time.Duration, logger *slog.Logger, now func() time.Time) *member {
	if now == nil {
		now = time.Now
	}
	host, _ := os.Hostname() // "" when unknown: the id still names the instance
	m := &member{
		coord: coord, sched: sched, log: logger, now: now, ttl: ttl,
		self: engine.Instance{ID: id, Host: host, PID: os.Getpid(), StartedAt: now(), Flows: map[string]string{}},
	}
	m.status = web.ClusterStatus{Instance: id, Instances: 1}
	return m
}

// setFlows records the flows this instance serves, for its next heartbeat.
func (m *member) setFlows(flows []*engine.Flow) {
	versions := make(map[string]string, len(flows))
	for _, f := range flows {
		versions[f.ID] = f.Version
	}
	m.mu.Lock()
	m.self.Flows = versions
	m.mu.Unlock()
}

// start beats once, and fails when that heartbeat cannot be stored: an instance the others
// cannot see would have its runs marked crashed. Then it beats every beatInterval until
// leave, also after ctx is done, so that runs draining at shutdown stay attributed to a live
// instance.
func (m *member) start(ctx context.Context) error {
	if err := m.beat(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		t := time.NewTicker(beatInterval(m.ttl))
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				bctx, cancel := context.WithTimeout(lctx, m.ttl)
				if err := m.beat(bctx); err != nil {
					m.log.Warn("cluster heartbeat failed", "error", err)
				}
				cancel()
			}
		}
	}()
	return nil
}

// beat is one round: heartbeat, the schedule lease, the live instances and their flow
// versions, and — every ttl — crashed-run recovery. It returns the heartbeat's error; the
// other steps log theirs.
func (m *member) beat(ctx context.Context) error {
	m.beatMu.Lock()
	defer m.beatMu.Unlock()
	now := m.now()
	m.mu.Lock()
	inst, resigned := m.self, m.resigned
	m.mu.Unlock()
	inst.SeenAt, inst.Expires = now, now.Add(m.ttl)
	beatErr := m.coord.Heartbeat(ctx, inst)
	if beatErr != nil {
		beatErr = fmt.Errorf("cluster heartbeat: %w", beatErr)
	}

	if !resigned {
		held, err := m.coord.AcquireLease(ctx, scheduleLease, inst.ID, now, now.Add(m.ttl))
		m.mu.Lock()
		if err != nil {
			// Keep firing while the lease last taken lasts: the tick claims still make
			// sure nothing fires twice, and one failed round trip should not cost a handover.
			held = m.leader && now.Before(m.leaseUntil)
		} else if held {
			m.leaseUntil = now.Add(m.ttl)
		}
		m.mu.Unlock()
		if err != nil {
			m.log.Warn("cluster: cannot renew the schedule lease", "error", err, "holding", held)
		}
		m.setLeader(ctx, held)
	}

	if live, err := m.coord.Instances(ctx, now); err != nil {
		m.log.Warn("cluster: cannot list the live instances", "error", err)
	} else {
		m.compare(inst, live)
	}

	m.mu.Lock()
	recoverDue := now.Sub(m.lastRecover) >= m.ttl
	m.mu.Unlock()
	if recoverDue {
		n, err := m.coord.RecoverRuns(ctx, now)
		switch {
		case err != nil:
			m.log.Warn("cluster: cannot mark the runs of dead instances crashed", "error", err)
		case n > 0:
			m.log.Warn("marked runs left running by dead instances as crashed", "runs", n)
		}
		if err == nil {
			m.mu.Lock()
			m.lastRecover = now
			m.mu.Unlock()
		}
	}
	return beatErr
}

// setLeader pauses or resumes the scheduler when the lease changed hands.
func (m *member) setLeader(ctx context.Context, held bool) {
	m.mu.Lock()
	changed := m.leader != held
	m.leader = held
	m.status.ScheduleLeader = held
	m.mu.Unlock()
	switch {
	case changed && held:
		m.log.Info("cluster: holding the schedule lease; this instance fires the schedules", "instance", m.self.ID)
		m.sched.Resume(ctx)
	case changed:
		m.log.Info("cluster: lost the schedule lease; schedules paused", "instance", m.self.ID)
		m.sched.Pause()
	}
}

// compare checks this instance's flow versions (those of self) against those of the live
// instances, updates the status, and logs when the differences change.
func (m *member) compare(self engine.Instance, live []engine.Instance) {
	others := slices.DeleteFunc(slices.Clone(live), func(in engine.Instance) bool { return in.ID == self.ID })
	diffs := flowDiffs(self, others)
	m.mu.Lock()
	m.status.Instances = len(others) + 1
	m.status.FlowsDiffer = diffs
	m.mu.Unlock()

	if len(diffs) == 0 {
		if m.swapDiffer("") {
			m.log.Info("cluster: flow versions agree with every live instance again", "instances", len(others)+1)
		}
		return
	}
	var flows []string
	insts := map[string]bool{}
	var desc strings.Builder // every version, so that a flow changing again is logged again
	for _, d := range diffs {
		flows = append(flows, d.Flow)
		for _, id := range slices.Sorted(maps.Keys(d.Versions)) {
			if id != self.ID {
				insts[id] = true
			}
			fmt.Fprintf(&desc, "%s@%s=%s ", d.Flow, id, d.Versions[id])
		}
	}
	if m.swapDiffer(desc.String()) {
		m.log.Warn("cluster: flow versions differ from other instances; deploy the same flows folder to every instance",
			"flows", strings.Join(flows, ","), "instances", strings.Join(slices.Sorted(maps.Keys(insts)), ","))
	}
}

// swapDiffer stores desc as the latest difference and reports whether it changed.
func (m *member) swapDiffer(desc string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := m.differ != desc
	m.differ = desc
	return changed
}

// flowDiffs lists, by flow id, the flows that self serves in another version than one of
// others, or that only one side serves. Each diff maps self and every instance that differs
// to its version ("" for none).
func flowDiffs(self engine.Instance, others []engine.Instance) []web.FlowDiff {
	ids := map[string]bool{}
	for id := range self.Flows {
		ids[id] = true
	}
	for _, in := range others {
		for id := range in.Flows {
			ids[id] = true
		}
	}
	var diffs []web.FlowDiff
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		mine := self.Flows[id]
		var d *web.FlowDiff
		for _, in := range others {
			if v := in.Flows[id]; v != mine {
				if d == nil {
					d = &web.FlowDiff{Flow: id, Versions: map[string]string{self.ID: mine}}
				}
				d.Versions[in.ID] = v
			}
		}
		if d != nil {
			diffs = append(diffs, *d)
		}
	}
	return diffs
}

// Status is how this instance sees the cluster as of its latest beat (web.Config.Cluster).
func (m *member) Status() web.ClusterStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.status
	st.FlowsDiffer = slices.Clone(st.FlowsDiffer)
	return st
}

// resign gives the schedule lease up at shutdown, once the scheduler has stopped firing, so
// that another instance takes the schedules over at its next beat rather than after the
// lease expires. Heartbeats go on until leave.
func (m *member) resign(ctx context.Context) {
	m.beatMu.Lock()
	defer m.beatMu.Unlock()
	m.mu.Lock()
	m.resigned = true
	leader := m.leader
	m.leader, m.status.ScheduleLeader = false, false
	m.mu.Unlock()
	if !leader {
		return
	}
	if err := m.coord.ReleaseLease(ctx, scheduleLease, m.self.ID); err != nil {
		m.log.Warn("cluster: cannot release the schedule lease; another instance takes it when it expires", "error", err, "ttl", m.ttl)
		return
	}
	m.log.Info("cluster: released the schedule lease")
}

// leave stops beating and removes this instance from the cluster, releasing its leases: at a
// clean shutdown, after the runs in flight have ended.
func (m *member) leave(ctx context.Context) error {
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
	if err := m.coord.Leave(ctx, m.self.ID); err != nil {
		return fmt.Errorf("leave the cluster: %w", err)
	}
	return nil
}

// joinCluster makes this process, named id, a member when store coordinates several
// processes (PostgreSQL), and returns nil otherwise (SQLite). It pauses the scheduler and has
// it claim every tick; the scheduler fires only once start's beats win the schedule lease.
func joinCluster(store any, id string, sched *scheduler, ttl time.Duration, logger *slog.Logger) *member {
	coord, ok := store.(engine.Coordinator)
	if !ok {
		return nil
	}
	sched.Pause()
	sched.claim = func(ctx context.Context, flowID, trigger string, tick time.Time) (bool, error) {
		return coord.ClaimTick(ctx, flowID, trigger, tick, id)
	}
	logger.Info("cluster member", "instance", id, "ttl", ttl, "heartbeat", beatInterval(ttl))
	return newMember(coord, id, sched, ttl, logger, nil)
}
