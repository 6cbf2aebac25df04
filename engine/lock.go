package engine

import (
	"context"
	"sync"
)

// Locker gives named mutual exclusion within a flow. Lock blocks until the lock is held or ctx
// is done; the returned function releases it and must be called exactly once.
type Locker interface {
	Lock(ctx context.Context, flowID, name string) (unlock func(), err error)
}

// LocalLocker is a Locker for one process. The zero value is ready to use.
type LocalLocker struct {
	mu    sync.Mutex
	locks map[[2]string]chan struct{}
}

// Lock implements Locker. Waiters are served in no particular order.
func (l *LocalLocker) Lock(ctx context.Context, flowID, name string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[[2]string]chan struct{}{}
	}
	key := [2]string{flowID, name}
	ch := l.locks[key]
	if ch == nil {
		ch = make(chan struct{}, 1)
		l.locks[key] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-ch }) }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}
