package storage

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Run records are written by one goroutine, the writer, in group commits: CreateRun and
// FinishRun queue their write and wait; the writer takes everything queued — up to maxBatch
// writes — and commits it in one transaction, then answers every caller of the batch. While
// it commits, the next batch gathers. So a busy server pays for one commit per batch rather
// than per write, and a caller that returns nil knows its write is committed: it survives a
// crash of the process (the SQLite type's doc says what power loss can cost).
//
// Other writes (CommitStatic, MarkCrashed, pruning, schedule state) do not queue: they take
// the write connection when the writer is between batches, so they wait for at most the
// batch being committed.
const (
	// maxBatch bounds the writes in one transaction, and with it how long any other write
	// waits for the connection.
	maxBatch = 256
	// queueLen bounds the writes waiting for the writer; callers block when it is full.
	queueLen = 1024
)

// opKind is what a queued write does.
type opKind uint8

const (
	opCreate opKind = iota // insert a run
	opFinish               // update a run's end and replace its node executions
)

// An op's state: queued until the writer takes it or its caller gives up on it, whichever is
// first. A taken op is written; an abandoned op never is.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// runOp is one queued run write. Its fields are copied from the caller's run before it is
// queued, so the caller may change the run while it waits.
type runOp struct {
	kind  opKind
	row   runRow
	nodes []byte // encoded node executions (opFinish); nil: none
	state atomic.Int32
	done  chan error // receives the outcome once
}

// writer is the goroutine that commits queued run writes, and its queue.
type writer struct {
	runs  *runWrites
	queue chan *runOp
	// mu guards closed and sending on queue: Close takes it to close queue once no sender
	// is left.
	mu      sync.RWMutex
	closed  bool
	stopped chan struct{} // closed when the writer has drained the queue and returned
	// gate is held while a batch is gathered and written. Tests hold it to let writes
	// gather into one batch.
	gate sync.Mutex
	// commits counts the transactions the writer committed, writes the run writes in them.
	commits atomic.Int64
	writes  atomic.Int64
}

func newWriter(runs *runWrites) *writer {
	w := &writer{runs: runs, queue: make(chan *runOp, queueLen), stopped: make(chan struct{})}
	go w.loop()
	return w
}

// do queues op and waits for its outcome. When ctx ends first, do returns ctx's error and
// op is never written — unless the writer has already taken it, in which case do waits for
// the transaction (a batch at most) and returns its outcome. So an error always means the
// write did not happen, and nil that it is committed.
func (w *writer) do(ctx context.Context, op *runOp) error {
	if err := w.enqueue(ctx, op); err != nil {
		return err
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err()
		}
		return <-op.done
	}
}

// enqueue queues op without waiting for its outcome, which arrives on op.done. It waits only
// for room in the queue; when ctx ends first, or the writer is closed, op is not queued.
func (w *writer) enqueue(ctx context.Context, op *runOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op.done = make(chan error, 1)
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.queue <- op:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops taking writes, waits until every queued one is written and stops the writer.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.stopped
}

func (w *writer) loop() {
	defer close(w.stopped)
	batch := make([]*runOp, 0, maxBatch)
	for op := range w.queue {
		// Let the goroutines that are about to queue a write do so first.
		runtime.Gosched()
		w.gate.Lock()
		batch = append(batch[:0], op)
	gather:
		for len(batch) < maxBatch {
			select {
			case op, ok := <-w.queue:
				if !ok {
					break gather
				}
				batch = append(batch, op)
			default:
				break gather
			}
		}
		w.write(batch)
		w.gate.Unlock()
		clear(batch) // let answered ops be collected
	}
}

// write commits the batch's writes in one transaction and answers their callers. When that
// transaction fails, it writes each op in a transaction of its own, so that a bad write fails
// only its own caller.
func (w *writer) write(batch []*runOp) {
	live := batch[:0:0]
	for _, op := range batch {
		if op.state.CompareAndSwap(opQueued, opTaken) {
			live = append(live, op)
		}
	}
	if len(live) == 0 {
		return
	}
	errs, err := w.commit(live)
	if err == nil {
		for i, op := range live {
			op.done <- errs[i]
		}
		return
	}
	if len(live) == 1 {
		live[0].done <- err
		return
	}
	for _, op := range live {
		errs, err := w.commit([]*runOp{op})
		if err == nil {
			err = errs[0]
		}
		op.done <- err
	}
}

// commit writes ops in order in one transaction. It returns an error when the transaction
// failed and wrote nothing; otherwise the outcome of each op: nil, or an error of an op that
// wrote nothing (FinishRun of an unknown run). A CreateRun followed in ops by a FinishRun of
// the same run is written as one insert of the finished run.
func (w *writer) commit(ops []*runOp) ([]error, error) {
	errs := make([]error, len(ops))
	pair := coalesce(ops)
	// A transaction, once begun, is finished: the caller's ctx does not reach it.
	err := w.runs.inTx(context.Background(), func(st *runStmts) error {
		for i, op := range ops {
			switch {
			case op.kind == opCreate:
				final, nodes := op.row, []byte(nil)
				if j := pair[i]; j >= 0 {
					final, nodes = ops[j].row.after(&op.row), ops[j].nodes
				}
				if err := st.insertRun(&final, nodes); err != nil {
					return err
				}
			case pair[i] >= 0:
				// A FinishRun written with its CreateRun.
			default:
				found, err := st.finishRun(&op.row, op.nodes)
				if err != nil {
					return err
				}
				if !found {
					errs[i] = ErrNotFound
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w.commits.Add(1)
	w.writes.Add(int64(len(ops)))
	return errs, nil
}

// coalesce pairs each CreateRun in ops with the first FinishRun of the same run after it:
// pair[i] is the index of op i's partner, or -1.
func coalesce(ops []*runOp) []int {
	pair := make([]int, len(ops))
	var created map[string]int // run id → index of its CreateRun, while unpaired
	for i, op := range ops {
		pair[i] = -1
		switch op.kind {
		case opCreate:
			if created == nil {
				created = map[string]int{}
			}
			if _, dup := created[op.row.id]; !dup {
				created[op.row.id] = i
			}
		case opFinish:
			if c, ok := created[op.row.id]; ok {
				pair[c], pair[i] = i, c
				delete(created, op.row.id)
			}
		}
	}
	return pair
}

// WriterStats is what the run writer has committed since the store opened.
type WriterStats struct {
	// Commits counts its transactions, Writes the run writes (starts and ends of runs) in
	// them: Writes/Commits is how well group commit batches.
	Commits, Writes int64
}

// WriterStats returns the run writer's counts so far.
func (s *SQLite) WriterStats() WriterStats {
	return WriterStats{Commits: s.wr.commits.Load(), Writes: s.wr.writes.Load()}
}
