package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// localServer is an HTTP server this tool runs on 127.0.0.1.
type localServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

func startLocal(h http.Handler) (*localServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	s := &localServer{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // ErrServerClosed once Close is called
	}()
	return s, nil
}

// URL is the address of path on this server.
func (s *localServer) URL(path string) string { return "http://" + s.ln.Addr().String() + path }

// Close stops the server and waits until it has.
func (s *localServer) Close() {
	_ = s.srv.Close()
	<-s.done
}

// tokenEndpoint is an OAuth2 client-credentials token endpoint for the token flow. Its tokens
// live a day, so one fetch at the start keeps the flow in steady state for the whole run.
type tokenEndpoint struct {
	*localServer
	hits atomic.Int64
}

func startTokenEndpoint() (*tokenEndpoint, error) {
	t := &tokenEndpoint{}
	s, err := startLocal(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := t.hits.Add(1)
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": "bench-%d", "token_type": "Bearer", "expires_in": 86400}`, n)
	}))
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	t.localServer = s
	return t, nil
}

// timeGET sends GET url reps times after two unmeasured ones and returns the latencies; check
// vets each answer (status and body). A 404 answer ends it with errNotServed.
func timeGET(ctx context.Context, client *http.Client, url string, reps int, check func(body []byte) error) (*histogram, error) {
	h := &histogram{}
	for i := range reps + 2 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		took := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		if res.StatusCode == http.StatusNotFound {
			return nil, errNotServed
		}
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d: %.300s", url, res.StatusCode, body)
		}
		if err := check(body); err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		if i >= 2 {
			h.Record(took)
		}
	}
	return h, nil
}

// errNotServed is a 404 from a page flowd does not have (yet).
var errNotServed = errors.New("not served (404)")
