package storage

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
)

// Every run reads its flow's static data, most runs write none, and only this store writes
// it while a flowd serves the database. So the store keeps each flow's static data as it last
// read it, and a run's read costs a map copy instead of a query (a third of flowd's CPU time per
// webhook run went to that query; BENCHMARKS.md).
//
// The cache is never staler than the database as this process writes it: every write of static
// data through the store drops the flow's entry after the write, and an entry read while a
// write was under way is not kept (gen). Writes by another process — `flowd rotate-key`
// while serving, or someone's sqlite3 shell — are noticed through the write connection's
// PRAGMA data_version, which changes exactly when another connection has committed, and since
// every write of this process goes through that one connection, when another process has. The
// run writer reads it after a batch it commits, at most every observeEvery; a read of static
// data finds it read within staticStaleness or reads it first. A change from outside is seen within that bound, and a
// run that writes static data from a stale read still cannot lose an update: CommitStatic checks
// the versions it read inside its transaction.
const staticStaleness = 20 * time.Millisecond

// staticCache is the store's copy of flows' static data.
type staticCache struct {
	mu    sync.Mutex
	flows map[string]map[string]engine.StaticValue
	// gen counts drops; a fill that began before a drop is not kept.
	gen uint64
	// dataVersion is the write connection's data_version when last read, checked when.
	dataVersion int64
	checked     time.Time
}

// get returns a copy of the flow's cached static data when it may be served (hit). On a
// miss it says whether the data version was read within staticStaleness of now (fresh; if not,
// the caller reads it first, as a write from outside may have been missed) and the current
// generation, which the caller passes to put with what it reads.
func (c *staticCache) get(flowID string, now time.Time) (m map[string]engine.StaticValue, hit, fresh bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh = !c.checked.IsZero() && now.Sub(c.checked) <= staticStaleness
	if cached, ok := c.flows[flowID]; ok && fresh {
		return maps.Clone(cached), true, true, c.gen
	}
	return nil, false, fresh, c.gen
}

// generation is the current generation (see get).
func (c *staticCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps a copy of what a read found, unless a drop came after the read began (gen).
func (c *staticCache) put(flowID string, gen uint64, m map[string]engine.StaticValue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.flows == nil {
		c.flows = map[string]map[string]engine.StaticValue{}
	}
	c.flows[flowID] = maps.Clone(m)
}

// drop forgets the flow's static data, after this process wrote it or tried to.
func (c *staticCache) drop(flowID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.flows, flowID)
}

// dropAll forgets every flow's static data.
func (c *staticCache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.flows)
}

// observe records the write connection's data_version read at the given time; when it changed
// since the last reading, another process has committed, and everything is dropped.
func (c *staticCache) observe(version int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.dataVersion || c.checked.IsZero() {
		c.gen++
		clear(c.flows)
		c.dataVersion = version
	}
	if at.After(c.checked) {
		c.checked = at
	}
}

// checkDataVersion reads the write connection's data_version into the cache. It waits for the
// connection, which the run writer holds for at most one batch.
func (s *SQLite) checkDataVersion(ctx context.Context) error {
	at := time.Now()
	var v int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return err
	}
	s.static.observe(v, at)
	return nil
}
