// Package storagetest is the conformance suite every flowd store passes: static data with its
// versions and conflicts, run records, schedule state, retention and health — and, for stores
// several processes share (engine.Coordinator, engine.Locker), heartbeats, leases, tick
// claims, crashed-run recovery and cross-process locks. Each backend's tests call Run with a
// function that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Backend { … })
//	}
package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// Opener opens a fresh, empty store for t and closes it when t ends.
type Opener func(t *testing.T) storage.Backend

// Cluster is implemented by a store under test that several instances share (one that
// implements engine.Coordinator must): OpenInstance opens another handle on the same
// database as the instance id, closed when t ends.
type Cluster interface {
	OpenInstance(t *testing.T, id string) storage.Backend
}

// Instanced is implemented by stores that stamp the runs they create with an instance id.
type Instanced interface {
	InstanceID() string
}

// Run runs the whole suite against the stores open makes. Subtests run in parallel, each on
// a store of its own.
func Run(t *testing.T, open Opener) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"static", staticTests},
		{"runs", runTests},
		{"schedule", scheduleTests},
		{"retention", retentionTests},
		{"health", healthTests},
		{"cluster", clusterTests},
		{"lock", lockTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, open)
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, open Opener)
}

// ctx is a context for one test's calls, ended when the test ends.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// t0 is a start time with microseconds, which stores keep.
var t0 = time.Date(2026, 11, 27, 6, 10, 57, 123456000, time.UTC)

// coordinator returns b as an engine.Coordinator, skipping the test when it is not one, and
// its Cluster (failing when it is a Coordinator without one).
func coordinator(t *testing.T, b storage.Backend) (engine.Coordinator, Cluster) {
	t.Helper()
	c, ok := b.(engine.Coordinator)
	if !ok {
		t.Skipf("%T is not an engine.Coordinator", b)
	}
	cl, ok := b.(Cluster)
	if !ok {
		t.Fatalf("%T is an engine.Coordinator but the test's store has no OpenInstance (storagetest.Cluster)", b)
	}
	return c, cl
}
