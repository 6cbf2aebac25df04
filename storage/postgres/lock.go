package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// unlockTimeout bounds giving a lock back; past it the connection is closed, which ends its
// session and so releases the lock anyway.
const unlockTimeout = 5 * time.Second

// Lock implements engine.Locker across every process on the database: the lock is a
// session-level advisory lock, held on a connection of the store's lock pool until unlock.
// Waiters within this process queue on a LocalLocker first, so the process holds or waits on
// at most one connection per lock. It blocks until the lock is held or ctx is done; a process
// that dies loses its connections and so its locks.
func (s *Store) Lock(ctx context.Context, flowID, name string) (func(), error) {
	unlockLocal, err := s.local.Lock(ctx, flowID, name)
	if err != nil {
		return nil, err
	}
	conn, err := s.locks.Acquire(ctx)
	if err != nil {
		unlockLocal()
		return nil, fmt.Errorf("lock %s/%s: %w", flowID, name, unavailable(err))
	}
	key := lockKey(flowID, name)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		// The lock may have been granted as ctx ended: close the session to be sure it is not
		// left held.
		conn.Conn().Close(context.Background())
		conn.Release()
		unlockLocal()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("lock %s/%s: %w", flowID, name, unavailable(err))
	}
	var once sync.Once
	return func() { once.Do(func() { s.unlock(conn, key, unlockLocal) }) }, nil
}

// unlock gives the advisory lock back and the connection to the pool, then the local lock.
func (s *Store) unlock(conn *pgxpool.Conn, key int64, unlockLocal func()) {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&ok); err != nil || !ok {
		conn.Conn().Close(ctx)
	}
	conn.Release()
	unlockLocal()
}

// lockKey is the advisory lock key of a flow's named lock: 64 bits of FNV-1a of both names.
func lockKey(flowID, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(flowID))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return int64(h.Sum64())
}
