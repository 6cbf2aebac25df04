package storage

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"
)

// In WAL mode every commit appends pages to the WAL, and a checkpoint copies them back into
// the database file. SQLite checkpoints by itself in the connection whose commit brings the
// WAL past 1,000 pages — here the run writer, in the middle of a batch — and a checkpoint
// syncs the WAL and the database file: 3-36 ms on the development VM, during which no run
// record is committed and every run waiting for one waits, leaving a sixth of the CPU idle
// under load. So a goroutine of its own checkpoints instead, on its own connection, while the
// writer goes on appending (a PASSIVE checkpoint takes no lock a writer needs). The writer's
// own automatic checkpoint stays as a backstop at a much larger WAL (autoCheckpointPages),
// should the background one fall behind.
const (
	// checkpointEvery is how often the checkpointer looks for new commits.
	checkpointEvery = 250 * time.Millisecond
	// autoCheckpointPages is the write connection's wal_autocheckpoint: 40 MiB of WAL.
	autoCheckpointPages = 10000
)

// checkpointer is the background checkpoint goroutine and its connection.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

// startCheckpointer opens the checkpointer's connection to the database at abs and starts
// it.
func startCheckpointer(ctx context.Context, abs string) (*checkpointer, error) {
	db, err := sql.Open("sqlite3", dsn(abs, url.Values{"_busy_timeout": {fmt.Sprint(busyTimeoutMillis)}}))
	if err != nil {
		return nil, err
	}
	oneConn(db)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

// loop checkpoints whenever another connection has committed since it last looked:
// PRAGMA data_version on its own connection changes exactly then.
func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	ctx := context.Background()
	var seen int64 = -1
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		var v int64
		if err := c.db.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil || v == seen {
			continue
		}
		seen = v
		// Errors are left to the writer's own checkpoints and to Close's: a busy or failing
		// checkpoint here only means the WAL grows a little more first.
		_ = drain(c.db.QueryContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"))
	}
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
