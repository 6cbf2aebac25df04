package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// Two tests' databases are separate: a table made in one is not in the other, and each
// database is gone once its test has ended.
func TestNewDatabase(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("a", func(t *testing.T) {
		first = NewDatabase(t)
		conn := Connect(t, first)
		if _, err := conn.Exec(ctx, `CREATE TABLE only_here (x int)`); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("b", func(t *testing.T) {
		conn := Connect(t, NewDatabase(t))
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("table of another test's database is visible: %d", n)
		}
	})
	if conn, err := pgx.Connect(ctx, first); err == nil {
		conn.Close(ctx)
		t.Fatalf("database of a finished test still accepts connections: %s", first)
	}
}
