package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/flowd/flowd/engine"
)

// This file is the contract between the HTTP layer and the program that wires it
// (cmd/flowd serve): what the server needs, declared here by the consumer.

// FlowSource gives the live set of flows. flowd swaps the set atomically on reload; each
// request reads Current once and works with that snapshot, so a run started by a request
// finishes on the flow version it started with.
type FlowSource interface {
	Current() *FlowSet
}

// Runner runs a flow and returns its record when the run ends (engine.Executor does).
type Runner interface {
	Run(ctx context.Context, f *engine.Flow, req engine.RunRequest) (*engine.Run, error)
}

// StaticStore reads and resets flows' static data.
type StaticStore interface {
	Static(ctx context.Context, flowID string) (map[string]any, error)
	ResetStatic(ctx context.Context, flowID string) error
}

// ScheduleInfo tells when schedule triggers fire next.
type ScheduleInfo interface {
	// NextFire returns the next fire time of the flow's schedule trigger, or false when it
	// is not scheduled.
	NextFire(flowID, trigger string) (time.Time, bool)
}

// ClusterStatus is how one of several flowd instances sharing a store sees the cluster, as of
// its latest heartbeat.
type ClusterStatus struct {
	// Instance is this instance's id; Instances counts the live ones, this one included.
	Instance  string `json:"instance"`
	Instances int    `json:"instances"`
	// ScheduleLeader is set while this instance holds the schedule lease and fires schedules.
	ScheduleLeader bool `json:"scheduleLeader"`
	// FlowsDiffer lists the flows whose versions differ between live instances, by flow id;
	// empty when every instance serves the same flow files.
	FlowsDiffer []FlowDiff `json:"flowsDiffer"`
}

// FlowDiff is one flow that live instances serve in different versions.
type FlowDiff struct {
	Flow string `json:"flow"`
	// Versions maps each live instance's id to the version (Flow.Version) it serves; ""
	// when it does not serve the flow at all.
	Versions map[string]string `json:"versions"`
}

// Config is everything New needs. Flows, Runner, Runs and Static are required. When Runs
// also implements engine.RunCounter, the flows page shows each flow's runs of the last 24 h.
type Config struct {
	Flows  FlowSource
	Runner Runner
	Runs   engine.RunReader
	Static StaticStore
	// Schedules may be nil: then no next fire times are shown.
	Schedules ScheduleInfo
	// Health checks the database; nil means always healthy.
	Health func(ctx context.Context) error
	// Cluster, when set, says how this instance sees the others sharing its store; /healthz
	// reports it. nil: flowd runs alone.
	Cluster func() ClusterStatus
	// Metrics is where the server counts webhook requests and which /metrics serves; nil
	// means a fresh set.
	Metrics *Metrics
	// MaxRunsPerFlow bounds the runs of one flow in progress at once (default
	// DefaultMaxRunsPerFlow); beyond it, webhooks and manual runs get 429.
	MaxRunsPerFlow int
	// MaxBodyBytes bounds webhook request bodies (default 1 MiB); larger ones get 413.
	MaxBodyBytes int64
	// Events feeds the UI's live updates; nil means pages do not update live. Wrap the
	// executor's store with Events.Store so that every run is published.
	Events *Events
	// Auth, when enabled, guards the UI, the API and /metrics (see Auth).
	Auth *Auth
	// SeparateMetrics leaves /metrics off the main router; serve MetricsHandler elsewhere.
	SeparateMetrics bool
	// Secrets gives the values of the secrets that webhook nodes name for authentication,
	// looked up on each request; nil means none, so such webhooks answer 500.
	Secrets engine.Secrets
	// Demo, when set, is served at /demo/oauth/token.
	Demo   http.Handler
	Logger *slog.Logger
}
