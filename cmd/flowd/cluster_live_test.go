package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage/postgres/pgtest"
	"github.com/flowd/flowd/web"
)

// The UI's live updates across instances: a browser on one instance hears about the runs
// every instance on the database executes (docs/cluster.md).

// liveFlow answers its webhook with the last node's output.
const liveFlow = `{"id": "live", "nodes": [
	{"name": "in", "type": "webhook", "parameters": {"path": "live", "responseMode": "lastNode"}},
	{"name": "out", "type": "code", "parameters": {"return": {"ok": true}}}
], "connections": {"in": ["out"]}}`

// sseEvent is one event of a Server-Sent Events stream.
type sseEvent struct{ name, data string }

// subscribe opens s's GET /events and returns its events, once the server has subscribed the
// stream (it says so with a ": connected" comment). The stream ends with the test.
func subscribe(t *testing.T, s *server, query string) <-chan sseEvent {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url("/events"+query), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		res.Body.Close()
		t.Fatalf("GET /events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() && sc.Text() != ": connected" {
	}
	ch := make(chan sseEvent, 100)
	go func() {
		defer close(ch)
		defer res.Body.Close()
		var ev sseEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// nextEvent returns the stream's next event, failing the test when none comes.
func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event")
	}
	return sseEvent{}
}

// expectRun reads the stream's next events: the run's start, then its success.
func expectRun(t *testing.T, events <-chan sseEvent, id, on string) {
	t.Helper()
	for _, want := range []engine.RunStatus{engine.StatusRunning, engine.StatusSuccess} {
		ev := nextEvent(t, events)
		var got web.RunEvent
		if ev.name != "run" || json.Unmarshal([]byte(ev.data), &got) != nil ||
			got != (web.RunEvent{ID: id, FlowID: "live", Status: want}) {
			t.Fatalf("event %s %s, want run %s (on %s) %s", ev.name, ev.data, id, on, want)
		}
	}
}

// runLive runs the live flow by its webhook on s and returns the run's id.
func runLive(t *testing.T, s *server) string {
	t.Helper()
	res, err := http.Get(s.url("/webhook/live"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	id := res.Header.Get("X-Flowd-Run-Id")
	if res.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("webhook: %d, run %q", res.StatusCode, id)
	}
	return id
}

// TestClusterLiveEvents: a page on instance a hears, live, of the runs a webhook to instance
// b executes — once each, as it does of a's own; when a loses its listening connection to the
// database, its pages are told to resync, and it hears b's runs again.
func TestClusterLiveEvents(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	servers := startCluster(t, 2, flowsDir(t, map[string]string{"live.json": liveFlow}), dsn, nil)
	a, b := servers[0], servers[1]
	events := subscribe(t, a, "?flow=live")

	expectRun(t, events, runLive(t, b), "b")
	// a's own run: published once, in process; a's notice of it is not published again,
	// so the next events are those of b's next run.
	expectRun(t, events, runLive(t, a), "a")
	expectRun(t, events, runLive(t, b), "b")

	// End the listening sessions (a's and b's) as a database restart or network cut would.
	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var ended int
	err = admin.QueryRow(t.Context(), `
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND query = 'LISTEN flowd_runs'`).Scan(&ended)
	if err != nil || ended != 2 {
		t.Fatalf("ending the listening sessions: %d ended, %v", ended, err)
	}
	if ev := nextEvent(t, events); ev.name != "resync" {
		t.Fatalf("after the listening session ended: event %s %s, want resync", ev.name, ev.data)
	}
	eventually(t, "a listening again", func() bool {
		return strings.Contains(a.log.String(), "live run updates: listening again")
	})
	expectRun(t, events, runLive(t, b), "b")
}
