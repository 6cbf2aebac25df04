package storage

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// Committed pages reach the database file in the background, long before the write
// connection's own checkpoint threshold, and without Close.
func TestCheckpointerCopiesWALIntoTheFile(t *testing.T) {
	s := openTest(t)
	size := func() int64 {
		fi, err := os.Stat(s.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	ctx := context.Background()
	for i := range 200 {
		r := testRun(fmt.Sprintf("r%03d", i), "f", i)
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, finished(r)); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "the runs' pages in the database file", func() bool { return size() > before+64<<10 })
}
