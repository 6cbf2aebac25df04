package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowd/flowd/engine"
)

// Metrics holds flowd's Prometheus metrics in a set of its own (never the library's global
// set), so that two servers in one process, as in tests, count separately. It is safe for
// concurrent use.
type Metrics struct {
	set *metrics.Set

	mu    sync.RWMutex
	byKey map[metricKey]any // see metric
}

// NewMetrics returns an empty set of metrics.
func NewMetrics() *Metrics {
	return &Metrics{set: metrics.NewSet()}
}

// durationBuckets are the histogram bounds in seconds: from a quick node to a run near the
// default five-minute timeout.
var durationBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// families describes each metric family for the # HELP and # TYPE lines.
var families = map[string]struct{ typ, help string }{
	"flowd_runs_total":             {"counter", "Finished runs by flow and final status."},
	"flowd_run_duration_seconds":   {"histogram", "Wall time of finished runs by flow."},
	"flowd_node_duration_seconds":  {"histogram", "Wall time of node executions, retries included, by flow and node type."},
	"flowd_static_writes_total":    {"counter", "Static-data keys written or deleted by committed node executions, by flow."},
	"flowd_static_conflicts_total": {"counter", "Static-data commits refused because a key read had changed, by flow; the node runs again."},
	"flowd_webhook_requests_total": {"counter", "Requests to /webhook/ by response status (499: the client went away first)."},
	"flowd_store_commits_total":    {"counter", "Transactions the store's run writer committed (group commits)."},
	"flowd_store_run_writes_total": {"counter", "Run writes (starts and ends of runs) in those transactions; divided by commits, the writes per group commit."},

	// Requests a webhook node refused before any run started.
	"flowd_webhook_auth_failures_total": {"counter", "Webhook requests refused by the node's authentication, by flow, node and reason (missing, invalid, expired)."},
	"flowd_webhook_rate_limited_total":  {"counter", "Webhook requests refused with 429 by the node's rate limit, by flow and node."},
}

// WritePrometheus writes every metric in the Prometheus text format, each family preceded by
// its # HELP and # TYPE lines.
func (m *Metrics) WritePrometheus(w io.Writer) {
	var buf bytes.Buffer
	m.set.WritePrometheus(&buf)
	out := bufio.NewWriter(w)
	defer out.Flush()
	prev := ""
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue // metadata the library may add when enabled globally; ours is below
		}
		if fam := family(line); fam != prev {
			if d, ok := families[fam]; ok {
				fmt.Fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", fam, d.help, fam, d.typ)
			}
			prev = fam
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
}

// family is the metric family a sample line belongs to: its name without labels and without
// a histogram's _bucket, _sum or _count suffix.
func family(line string) string {
	name := line
	if i := strings.IndexAny(line, "{ "); i >= 0 {
		name = line[:i]
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if d, known := families[base]; known && d.typ == "histogram" {
				return base
			}
		}
	}
	return name
}

// labelValue escapes v for use inside a double-quoted Prometheus label value: backslash,
// double quote and line feed are escaped and invalid UTF-8 is replaced, so user text such as a
// flow id cannot break the exposition format.
func labelValue(v string) string {
	return labelEscaper.Replace(strings.ToValidUTF8(v, "\uFFFD"))
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// CountStoreWrites exports the store's run writer counts, read from stats at each scrape, as
// flowd_store_commits_total and flowd_store_run_writes_total. Call it once.
func (m *Metrics) CountStoreWrites(stats func() (commits, writes int64)) {
	m.set.NewGauge("flowd_store_commits_total", func() float64 { c, _ := stats(); return float64(c) })
	m.set.NewGauge("flowd_store_run_writes_total", func() float64 { _, w := stats(); return float64(w) })
}

func (m *Metrics) counter(name string, labels ...string) *metrics.Counter {
	return m.metric(name, labels, func(full string) any { return m.set.GetOrCreateCounter(full) }).(*metrics.Counter)
}

func (m *Metrics) histogram(name string, labels ...string) *metrics.PrometheusHistogram {
	return m.metric(name, labels, func(full string) any {
		return m.set.GetOrCreatePrometheusHistogramExt(full, durationBuckets)
	}).(*metrics.PrometheusHistogram)
}

// metricKey is a metric's name and up to three label pairs, as the callers spell them.
type metricKey [7]string

// metric returns the metric named name with labels, made by create from its full name the
// first time. Every run updates several metrics; looking them up by their parts spares
// rendering and escaping their full names each time.
func (m *Metrics) metric(name string, labels []string, create func(full string) any) any {
	var k metricKey
	if len(labels) > len(k)-1 {
		return create(metricName(name, labels))
	}
	k[0] = name
	copy(k[1:], labels)
	m.mu.RLock()
	v, ok := m.byKey[k]
	m.mu.RUnlock()
	if ok {
		return v
	}
	v = create(metricName(name, labels))
	m.mu.Lock()
	if m.byKey == nil {
		m.byKey = map[metricKey]any{}
	}
	m.byKey[k] = v
	m.mu.Unlock()
	return v
}

// metricName renders name{k="v",…} from alternating label names and values.
func metricName(name string, labels []string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(labels[i])
		b.WriteString(`="`)
		b.WriteString(labelValue(labels[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// webhookRequest counts one answered webhook request.
func (m *Metrics) webhookRequest(status int) {
	m.counter("flowd_webhook_requests_total", "status", strconv.Itoa(status)).Inc()
}

// webhookAuthFailure counts one request refused by a webhook's authentication.
func (m *Metrics) webhookAuthFailure(flow, node, reason string) {
	m.counter("flowd_webhook_auth_failures_total", "flow", flow, "node", node, "reason", reason).Inc()
}

// webhookRateLimited counts one request refused by a webhook's rate limit.
func (m *Metrics) webhookRateLimited(flow, node string) {
	m.counter("flowd_webhook_rate_limited_total", "flow", flow, "node", node).Inc()
}

// observeRun records a finished run and its node executions.
func (m *Metrics) observeRun(r *engine.Run) {
	m.counter("flowd_runs_total", "flow", r.FlowID, "status", string(r.Status)).Inc()
	if !r.FinishedAt.IsZero() {
		m.histogram("flowd_run_duration_seconds", "flow", r.FlowID).Update(r.FinishedAt.Sub(r.StartedAt).Seconds())
	}
	for i := range r.Nodes {
		nr := &r.Nodes[i]
		m.histogram("flowd_node_duration_seconds", "flow", r.FlowID, "type", nr.Type).Update(float64(nr.DurationMicros) / 1e6)
	}
}

// Store returns s with metrics: every call is forwarded to s unchanged; FinishRun counts the
// run (flowd_runs_total, flowd_run_duration_seconds, flowd_node_duration_seconds) whether or
// not s stored it, and CommitStatic counts the changes of each commit s accepted
// (flowd_static_writes_total) and each conflict (flowd_static_conflicts_total). Give the
// result to the engine.Executor.
func (m *Metrics) Store(s engine.Store) engine.Store {
	return &meteredStore{next: s, m: m}
}

type meteredStore struct {
	next engine.Store
	m    *Metrics
}

func (s *meteredStore) LoadStatic(ctx context.Context, flowID string) (map[string]engine.StaticValue, error) {
	return s.next.LoadStatic(ctx, flowID)
}

func (s *meteredStore) CommitStatic(ctx context.Context, c *engine.StaticCommit) error {
	err := s.next.CommitStatic(ctx, c)
	switch {
	case err == nil:
		s.m.counter("flowd_static_writes_total", "flow", c.FlowID).Add(len(c.Changes))
	case errors.Is(err, engine.ErrStaticConflict):
		s.m.counter("flowd_static_conflicts_total", "flow", c.FlowID).Inc()
	}
	return err
}

// QueueCreateRun forwards to the store when it can queue, else records at once.
func (s *meteredStore) QueueCreateRun(ctx context.Context, r *engine.Run) (func() error, error) {
	return queueCreateRun(ctx, s.next, r)
}

// queueCreateRun queues r's start record in next when next can queue it, and otherwise
// writes it now.
func queueCreateRun(ctx context.Context, next engine.Store, r *engine.Run) (func() error, error) {
	if q, ok := next.(engine.RunQueuer); ok {
		return q.QueueCreateRun(ctx, r)
	}
	if err := next.CreateRun(ctx, r); err != nil {
		return nil, err
	}
	return func() error { return nil }, nil
}

func (s *meteredStore) CreateRun(ctx context.Context, r *engine.Run) error {
	return s.next.CreateRun(ctx, r)
}

func (s *meteredStore) FinishRun(ctx context.Context, r *engine.Run) error {
	s.m.observeRun(r) // first, so the run is counted by the time anyone can read its record
	return s.next.FinishRun(ctx, r)
}
