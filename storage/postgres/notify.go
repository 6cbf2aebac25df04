package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/engine"
)

// Every run start and end the store commits is announced on a PostgreSQL channel, in the
// same statement as the write, so a notice is delivered exactly when — and only if — the
// write commits. Other instances LISTEN to it (ListenRuns) and update their UI's live pages.

// runsChannel is the channel run notices go out on.
const runsChannel = "flowd_runs"

// maxNoticeBytes bounds a notice's payload: PostgreSQL refuses payloads of 8000 bytes or more.
const maxNoticeBytes = 7999

// RunNotice is a run's start or end announced by an instance on the database.
type RunNotice struct {
	ID     string           `json:"id"`
	FlowID string           `json:"flowId,omitempty"` // "" when the flow id was too long to send; ListenRuns reads it back
	Status engine.RunStatus `json:"status"`
	// Origin is the instance id of the store that wrote the run; "" for runs marked crashed
	// by RecoverRuns, which no instance announced in process.
	Origin string `json:"origin,omitempty"`
	// Resync, set only by ListenRuns after its connection was lost and is back, says that
	// notices may have been missed meanwhile; the other fields are empty then.
	Resync bool `json:"-"`
}

// notice is the payload announcing r's current status: the flow id is left out when the
// payload would not fit otherwise.
func (s *Store) notice(r *engine.Run) string {
	n := RunNotice{ID: r.ID, FlowID: r.FlowID, Status: r.Status, Origin: s.instance}
	b, _ := json.Marshal(n) // strings only: cannot fail
	if len(b) > maxNoticeBytes {
		n.FlowID = ""
		b, _ = json.Marshal(n)
	}
	if len(b) > maxNoticeBytes { // absurd ids: announce nothing rather than fail the write
		return ""
	}
	return string(b)
}

// notifySQL wraps a data-modifying statement that returns the run's id, so that the
// notice ($1; "" for none) is sent when a row was written and not otherwise; the statement's
// own parameters start at $2. The command tag counts the rows written.
func notifySQL(stmt string) string {
	return `WITH w AS (` + stmt + `)
SELECT CASE WHEN $1 <> '' THEN pg_notify('` + runsChannel + `', $1) END FROM w`
}

// Listening: how long the connection may stay silent before it is checked, and the
// bounds of the wait between reconnections.
const (
	listenIdleCheck   = 30 * time.Second
	listenPingTimeout = 5 * time.Second
	listenMinBackoff  = 100 * time.Millisecond
	listenMaxBackoff  = 10 * time.Second
)

// ListenRuns calls fn with every run start and end that other instances on the database
// commit, and with the runs RecoverRuns marks crashed (whoever marks them). Notices whose
// Origin is this store's instance are skipped: that instance knew of them as it wrote them —
// so a store opened without an InstanceID hears its own writes too.
//
// It holds one connection of its own, outside the store's pools, and returns once it
// listens on it; it fails when that first connection or LISTEN fails. It then listens in
// the background: when the connection is lost (checked after listenIdleCheck of silence) it
// reconnects, waiting longer after each failure up to listenMaxBackoff, logs the loss and
// recovery on logger, and calls fn with a RunNotice whose Resync is set once it listens
// again. fn runs on the listening goroutine, one notice at a time, and must not block for long.
//
// stop ends listening and returns once the connection is closed; ending ctx does the same
// without the wait. Call stop before Close.
func (s *Store) ListenRuns(ctx context.Context, fn func(RunNotice), logger *slog.Logger) (stop func(), err error) {
	conn, err := s.listen(ctx)
	if err != nil {
		return nil, fmt.Errorf("listen for runs: %w", unavailable(err))
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.listenLoop(lctx, conn, fn, logger)
	}()
	return func() { cancel(); <-done }, nil
}

// listen opens a connection with the pool's settings and LISTENs on it.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.db.Config().ConnConfig)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+runsChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// listenLoop delivers notices from conn, replacing it when it fails, until ctx is done.
func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn, fn func(RunNotice), logger *slog.Logger) {
	defer func() {
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.Background(), listenPingTimeout)
			conn.Close(cctx)
			cancel()
		}
	}()
	backoff := listenMinBackoff
	for ctx.Err() == nil {
		if conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			var err error
			if conn, err = s.listen(ctx); err != nil {
				backoff = min(2*backoff, listenMaxBackoff)
				if ctx.Err() == nil {
					logger.Warn("live run updates: reconnecting to the database failed", "db", s.desc, "retryIn", backoff, "error", err)
				}
				continue
			}
			backoff = listenMinBackoff
			logger.Info("live run updates: listening again", "db", s.desc)
			fn(RunNotice{Resync: true})
		}
		if err := s.receive(ctx, conn, fn); err != nil {
			if ctx.Err() != nil {
				return
			}
			logger.Warn("live run updates: lost the listening connection", "db", s.desc, "error", err)
			conn.Close(context.Background())
			conn = nil
		}
	}
}

// receive waits for one notice on conn and delivers it, or checks conn when nothing has come
// for listenIdleCheck. It returns an error when conn no longer works.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn, fn func(RunNotice)) error {
	wctx, cancel := context.WithTimeout(ctx, listenIdleCheck)
	msg, err := conn.WaitForNotification(wctx)
	cancel()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		// Silence: a timeout leaves the connection usable; ask it whether the server is there.
		pctx, cancel := context.WithTimeout(ctx, listenPingTimeout)
		defer cancel()
		return conn.Ping(pctx)
	default:
		return err
	}
	var n RunNotice
	if err := json.Unmarshal([]byte(msg.Payload), &n); err != nil || n.ID == "" {
		return nil // not ours: someone else's use of the channel
	}
	if n.Origin != "" && n.Origin == s.instance {
		return nil
	}
	if n.FlowID == "" {
		// Left out for length: read it back. Should that fail the notice still goes out, to
		// the pages that watch every flow.
		_ = s.db.QueryRow(ctx, `SELECT flow_id FROM runs WHERE id = $1`, n.ID).Scan(&n.FlowID)
	}
	fn(n)
	return nil
}
