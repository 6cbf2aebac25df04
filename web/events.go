package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/engine"
)

// RunEvent tells live pages that a run started or ended.
type RunEvent struct {
	ID     string           `json:"id"`
	FlowID string           `json:"flowId"`
	Status engine.RunStatus `json:"status"`
}

// Events fans run events out to the pages watching them over Server-Sent Events. Publishing
// never blocks: a subscriber that falls behind loses events and is told to resync instead.
// With no subscriber, publishing costs one atomic load.
type Events struct {
	subscribers atomic.Int32

	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
	done   chan struct{} // closed by Close
}

// subscriptionBuffer is how many events a slow page may lag behind before it must resync.
const subscriptionBuffer = 256

type subscription struct {
	flow   string // only this flow's events; "" for all
	ch     chan RunEvent
	missed atomic.Bool
	wake   chan struct{} // Resync's nudge to send resync now
}

// NewEvents returns an event hub with no subscribers.
func NewEvents() *Events {
	return &Events{subs: map[*subscription]struct{}{}, done: make(chan struct{})}
}

// Publish sends ev to every subscriber that wants it.
func (e *Events) Publish(ev RunEvent) {
	if e.subscribers.Load() == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		if s.flow != "" && s.flow != ev.FlowID {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.missed.Store(true)
		}
	}
}

// Resync tells every subscriber at once that events may have been lost — as when the events
// of other instances stopped coming for a while — so that its page reloads what it shows.
func (e *Events) Resync() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		s.missed.Store(true)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// subscribe registers a subscriber to flow's events ("" for all); ok is false once Close
// has been called.
func (e *Events) subscribe(flow string) (s *subscription, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, false
	}
	s = &subscription{flow: flow, ch: make(chan RunEvent, subscriptionBuffer), wake: make(chan struct{}, 1)}
	e.subs[s] = struct{}{}
	e.subscribers.Add(1)
	return s, true
}

func (e *Events) unsubscribe(s *subscription) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.subs[s]; ok {
		delete(e.subs, s)
		e.subscribers.Add(-1)
	}
}

// Close ends every event stream and refuses new ones. A stream never goes idle by itself,
// so http.Server.Shutdown would wait for it until its deadline: register Close with
// http.Server.RegisterOnShutdown.
func (e *Events) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
}

// Store returns s with event publishing: a run's start and end are published once s has
// stored them. Every call is forwarded unchanged.
func (e *Events) Store(s engine.Store) engine.Store {
	return &eventStore{Store: s, events: e}
}

type eventStore struct {
	engine.Store
	events *Events
}

func (s *eventStore) CreateRun(ctx context.Context, r *engine.Run) error {
	if err := s.Store.CreateRun(ctx, r); err != nil {
		return err
	}
	s.events.Publish(RunEvent{ID: r.ID, FlowID: r.FlowID, Status: r.Status})
	return nil
}

// QueueCreateRun publishes the start once it is queued: the page that refetches may not find
// the run yet, and refetches again when it ends.
func (s *eventStore) QueueCreateRun(ctx context.Context, r *engine.Run) (func() error, error) {
	wait, err := queueCreateRun(ctx, s.Store, r)
	if err == nil {
		s.events.Publish(RunEvent{ID: r.ID, FlowID: r.FlowID, Status: r.Status})
	}
	return wait, err
}

func (s *eventStore) FinishRun(ctx context.Context, r *engine.Run) error {
	if err := s.Store.FinishRun(ctx, r); err != nil {
		return err
	}
	s.events.Publish(RunEvent{ID: r.ID, FlowID: r.FlowID, Status: r.Status})
	return nil
}

// eventWriteTimeout bounds the time to write one batch of events.
const eventWriteTimeout = 30 * time.Second

// heartbeat is how often an idle event stream sends a comment, so proxies and browsers keep
// it open and a dead client is noticed.
const heartbeat = 15 * time.Second

// serveEvents streams run events as Server-Sent Events: "run" events with a RunEvent as
// data, and "resync" when events were lost and the page should reload what it shows. The
// query parameter flow limits the stream to one flow.
func (e *Events) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	sub, ok := e.subscribe(r.URL.Query().Get("flow"))
	if !ok {
		http.Error(w, "flowd is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer e.unsubscribe(sub)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// retry: how long a browser waits before reconnecting after the stream ends.
	if _, err := fmt.Fprint(w, "retry: 2000\n: connected\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		// A stream lives long; a client that stops reading gets cut off after a while.
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		select {
		case <-r.Context().Done():
			return
		case <-e.done:
			return
		case <-sub.wake: // sends resync below
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
		case ev := <-sub.ch:
			// Write what is queued, then flush once.
			if !writeEvent(w, ev) {
				return
			}
			for more := true; more; {
				select {
				case ev := <-sub.ch:
					if !writeEvent(w, ev) {
						return
					}
				default:
					more = false
				}
			}
		}
		if sub.missed.Swap(false) {
			if _, err := fmt.Fprint(w, "event: resync\ndata: {}\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func writeEvent(w http.ResponseWriter, ev RunEvent) bool {
	data, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	_, err = fmt.Fprintf(w, "event: run\nid: %s\ndata: %s\n\n", ev.ID, data)
	return err == nil
}
