package storage

import (
	"os"
	"testing"
)

// TestMain removes the database of a million runs that the ListRuns benchmarks share, made
// once per process.
func TestMain(m *testing.M) {
	code := m.Run()
	if listRunsDB.dir != "" {
		os.RemoveAll(listRunsDB.dir)
	}
	os.Exit(code)
}
