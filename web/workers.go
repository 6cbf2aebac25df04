package web

import (
	"sync"
	"time"
)

// workers runs functions on goroutines kept from earlier calls. A run needs a deep stack (the
// expression VM, the store's cgo calls), and a new goroutine, started with a stack the size of
// an average goroutine's, grows it to that depth by copying it several times during every
// run: 6% of flowd's CPU under webhook load.
// A kept goroutine has grown it already; the runtime shrinks an idle one's stack at most by
// half per garbage collection.
type workers struct {
	// jobs hands a function to a goroutine waiting for one; it has no buffer, so a send
	// succeeds only when one is idle.
	jobs chan func()
	idle time.Duration // how long a goroutine with nothing to do waits before it exits
	stop chan struct{} // closed by close: idle goroutines exit
	once sync.Once
}

func newWorkers(idle time.Duration) *workers {
	return &workers{jobs: make(chan func()), idle: idle, stop: make(chan struct{})}
}

// close makes the idle goroutines exit, and every other one once its function returns.
func (p *workers) close() { p.once.Do(func() { close(p.stop) }) }

// run calls fn on an idle goroutine, or a new one when none is idle. It does not wait for fn.
func (p *workers) run(fn func()) {
	select {
	case p.jobs <- fn:
	default:
		go p.work(fn)
	}
}

func (p *workers) work(fn func()) {
	fn()
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		select {
		case fn := <-p.jobs:
			fn()
			t.Reset(p.idle)
		case <-t.C:
			return
		case <-p.stop:
			return
		}
	}
}
