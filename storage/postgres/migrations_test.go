package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/postgres"
	"github.com/flowd/flowd/storage/postgres/pgtest"
)

// Processes opening one new database at once apply each migration once, and all of them open.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, dsn)
	var rows, distinct int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != distinct {
		t.Errorf("schema_migrations has %d rows for %d versions", rows, distinct)
	}
}

// A database migrated by a newer flowd is refused, not misread.
func TestSchemaTooNew(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	openStore(t, dsn, "")
	if _, err := pgtest.Connect(t, dsn).Exec(context.Background(), `INSERT INTO schema_migrations VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, storage.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v; want ErrSchemaTooNew", err)
	}
}
