package engine

import (
	"context"
	"time"
)

// Instance is one flowd process of several that share a store and act as one engine, as its
// latest heartbeat describes it.
type Instance struct {
	// ID names the process for as long as it runs; a restart is a new instance.
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
	// SeenAt is the time of the latest heartbeat, Expires when the instance counts as dead
	// unless it beats again.
	SeenAt  time.Time `json:"seenAt"`
	Expires time.Time `json:"expires"`
	// Flows maps each flow id the instance serves to the version (Flow.Version) it loaded.
	Flows map[string]string `json:"flows"`
}

// Coordinator is what flowd processes sharing one store use to act as one engine: who is
// alive, who fires schedules, and which runs died with their process. A store shared by
// several processes (PostgreSQL) implements it; a store only one process opens (SQLite) does
// not need to.
//
// Times are passed in rather than read from the clock so that every decision a process makes
// is made against one reading of its clock. A store shared by processes on several hosts may
// instead anchor them on a clock of its own, so that skew between the processes' clocks does
// not matter: it keeps the durations the caller passes (Expires − SeenAt, expires − now) and
// judges liveness and expiry by its own time, ignoring the caller's now. Callers must
// therefore rely only on those durations, never on the exact times they pass being stored or
// compared; the Expires and SeenAt that Instances returns may be on the store's clock, and a
// duration that is not positive may be rejected as an error.
type Coordinator interface {
	// Heartbeat records inst as alive until inst.Expires (for Expires − SeenAt, on a store
	// that uses its own clock), inserting or replacing its entry.
	Heartbeat(ctx context.Context, inst Instance) error
	// Instances lists the instances whose heartbeat has not expired at now, oldest first.
	Instances(ctx context.Context, now time.Time) ([]Instance, error)
	// Leave removes the instance's entry and releases its leases, at a clean shutdown.
	Leave(ctx context.Context, id string) error
	// AcquireLease takes the named lease for holder until expires (for expires − now, on a
	// store that uses its own clock) when it is free or expired at now, or renews it when
	// holder already holds it. It reports whether holder holds the
	// lease afterwards.
	AcquireLease(ctx context.Context, name, holder string, now, expires time.Time) (bool, error)
	// ReleaseLease gives the lease up when holder holds it; otherwise it does nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
	// ClaimTick records that holder fires the schedule trigger's tick at the given time. It
	// returns false when that tick was already claimed, by anyone: a tick fires once across
	// the cluster even when two instances briefly both think they hold the schedule lease.
	ClaimTick(ctx context.Context, flowID, trigger string, tick time.Time, holder string) (bool, error)
	// RecoverRuns marks as crashed the runs still running that were started by an instance
	// with no live heartbeat at now, and returns how many it marked.
	RecoverRuns(ctx context.Context, now time.Time) (int, error)
}
