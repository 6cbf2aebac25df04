package storage_test

import (
	"testing"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/storagetest"
)

// The SQLite store passes the conformance suite that every backend passes; the cluster tests
// skip, since one process owns a SQLite file.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return storage.OpenTest(t) })
}
