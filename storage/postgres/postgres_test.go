package postgres_test

import (
	"context"
	"testing"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/postgres"
	"github.com/flowd/flowd/storage/postgres/pgtest"
	"github.com/flowd/flowd/storage/storagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// instance is a store under the conformance suite: it opens more instances on its database.
type instance struct {
	*postgres.Store
	dsn string
}

func (in instance) OpenInstance(t *testing.T, id string) storage.Backend {
	return openStore(t, in.dsn, id)
}

func openStore(t testing.TB, dsn, id string) instance {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return instance{Store: s, dsn: dsn}
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return openStore(t, pgtest.NewDatabase(t), "test")
	})
}
