package engine

import (
	"context"
	"fmt"
	"sync"
)

// memStore is an in-memory Store with the same commit semantics as the SQLite one.
type memStore struct {
	mu       sync.Mutex
	static   map[string]map[string]StaticValue
	runs     map[string]*Run
	finished []*Run
	commits  int
}

func newMemStore() *memStore {
	return &memStore{static: map[string]map[string]StaticValue{}, runs: map[string]*Run{}}
}

func (m *memStore) LoadStatic(_ context.Context, flowID string) (map[string]StaticValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]StaticValue{}
	for k, v := range m.static[flowID] {
		out[k] = StaticValue{Value: DeepCopy(v.Value), Version: v.Version}
	}
	return out, nil
}

func (m *memStore) CommitStatic(_ context.Context, c *StaticCommit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.static[c.FlowID]
	if cur == nil {
		cur = map[string]StaticValue{}
		m.static[c.FlowID] = cur
	}
	for k, v := range c.Reads {
		if cur[k].Version != v {
			return fmt.Errorf("key %q: %w", k, ErrStaticConflict)
		}
	}
	if c.ReadAll {
		for k := range cur {
			if _, ok := c.Reads[k]; !ok {
				return fmt.Errorf("key %q: %w", k, ErrStaticConflict)
			}
		}
	}
	for i, ch := range c.Changes {
		old, ok := cur[ch.Key]
		if ok {
			c.Changes[i].Before = old.Value
		}
		if ch.Deleted {
			delete(cur, ch.Key)
			continue
		}
		cur[ch.Key] = StaticValue{Value: DeepCopy(ch.After), Version: old.Version + 1}
	}
	m.commits++
	return nil
}

func (m *memStore) CreateRun(_ context.Context, r *Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := *r
	m.runs[r.ID] = &cp
	return nil
}

func (m *memStore) FinishRun(_ context.Context, r *Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.runs[r.ID]; !ok {
		return fmt.Errorf("finish unknown run %s", r.ID)
	}
	cp := *r
	m.runs[r.ID] = &cp
	m.finished = append(m.finished, &cp)
	return nil
}

func (m *memStore) get(flowID, key string) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.static[flowID][key]
	return v.Value, ok
}
