// Package web is flowd's HTTP layer: the webhook triggers, the JSON API, health and metrics.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/flowd/flowd/engine"
)

// DefaultMaxBodyBytes bounds webhook and API request bodies when Config.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// Server serves flowd's HTTP endpoints. Runs it starts (by webhook or the API) run on a
// context the server owns, not the request's, so a client that goes away does not cancel
// them; Shutdown waits for them.
type Server struct {
	cfg      Config
	log      *slog.Logger
	runs     *launcher
	hooks    *webhooks
	api      *api
	ui       *ui
	handler  http.Handler
	initOnce sync.Once
}

// New returns a server for cfg. It panics when a required field (Flows, Runner, Runs, Static)
// is nil: that is a wiring mistake, found at start-up.
func New(cfg Config) *Server {
	switch {
	case cfg.Flows == nil:
		panic("web.New: Config.Flows is nil")
	case cfg.Runner == nil:
		panic("web.New: Config.Runner is nil")
	case cfg.Runs == nil:
		panic("web.New: Config.Runs is nil")
	case cfg.Static == nil:
		panic("web.New: Config.Static is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxRunsPerFlow <= 0 {
		cfg.MaxRunsPerFlow = DefaultMaxRunsPerFlow
	}
	runs := newLauncher(cfg.Runner, cfg.Logger, cfg.MaxRunsPerFlow)
	s := &Server{cfg: cfg, log: cfg.Logger, runs: runs}
	s.hooks = &webhooks{
		flows: cfg.Flows, launcher: runs, metrics: cfg.Metrics, maxBody: cfg.MaxBodyBytes, log: cfg.Logger,
		secrets: cfg.Secrets, limits: newLimiters(),
	}
	s.api = &api{
		flows: cfg.Flows, launcher: runs, store: cfg.Runs, static: cfg.Static, schedules: cfg.Schedules,
		health: cfg.Health, cluster: cfg.Cluster, auth: cfg.Auth, metrics: cfg.Metrics, maxBody: cfg.MaxBodyBytes, log: cfg.Logger,
	}
	s.ui = newUI(cfg, runs)
	return s
}

// Handler returns the router. Every call returns the same handler.
func (s *Server) Handler() http.Handler {
	s.initOnce.Do(func() { s.handler = s.routes() })
	return s.handler
}

// routes is the route table: every endpoint flowd serves.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.recoverer, middleware.StripSlashes, baseHeaders)
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed(r))

	// Webhooks: one route for every path and method; the handler looks the request up in the
	// live flow set, because flows are swapped at runtime. They authenticate per node.
	r.With(s.hooks.count).Handle("/webhook/*", http.HandlerFunc(s.hooks.serve))
	r.Get("/healthz", s.api.healthz)
	if s.cfg.Demo != nil {
		r.Handle("/demo/oauth/token", s.cfg.Demo)
	}

	// Everything else is behind the server's authentication, when it has one, and refuses
	// state-changing requests from other sites (CSRF): basic auth, unlike a bearer token, is
	// sent by browsers on their own.
	r.Group(func(r chi.Router) {
		if s.cfg.Auth.Enabled() {
			r.Use(s.cfg.Auth.middleware(s.log, s.ui.unauthorized))
		}
		r.Use(s.ui.csrf.Handler, writeDeadline(pageWriteTimeout))

		r.Get("/api/flows", s.api.listFlows)
		r.Get("/api/flows/{id}", s.api.getFlow)
		r.Post("/api/flows/{id}/run", s.api.runFlow)
		r.Get("/api/flows/{id}/static", s.api.getStatic)
		r.Delete("/api/flows/{id}/static", s.api.resetStatic)
		r.Get("/api/runs", s.api.listRuns)
		r.Get("/api/runs/{id}", s.api.getRun)
		if !s.cfg.SeparateMetrics {
			r.Get("/metrics", s.api.prometheus)
		}

		// The UI: HTML pages, their assets and the live event stream.
		r.Group(func(r chi.Router) {
			r.Use(secureHeaders)
			r.Get("/", s.ui.flowsPage)
			r.Get("/flows/{id}", s.ui.flowPage)
			r.Get("/flows/{id}/reset", s.ui.confirmReset)
			r.Get("/runs", s.ui.runsPage)
			r.Get("/runs/{id}", s.ui.runPage)
			r.Get("/events", s.ui.serveEvents)
			r.Get("/assets/{name}", s.ui.serveAsset)
			r.Post("/flows/{id}/run", s.ui.runNow)
			r.Post("/flows/{id}/reset", s.ui.resetStatic)
		})
	})
	return r
}

// pageWriteTimeout bounds the time to answer an API or UI request, so that a client that
// stops reading cannot hold a connection and its goroutine for ever. The event stream
// replaces it with a deadline per event.
const pageWriteTimeout = 2 * time.Minute

// writeDeadline sets a write deadline on every response.
func writeDeadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// An error means the writer cannot have deadlines (a test recorder): nothing to bound.
			rc := http.NewResponseController(w)
			if rc.SetWriteDeadline(time.Now().Add(d)) == nil {
				// Without http.Server.WriteTimeout nothing resets it for the connection's next request.
				defer rc.SetWriteDeadline(time.Time{})
			}
			next.ServeHTTP(w, r)
		})
	}
}

// MetricsHandler serves the Prometheus metrics, for a listener of their own when
// Config.SeparateMetrics keeps them off the main one.
func (s *Server) MetricsHandler() http.Handler { return http.HandlerFunc(s.api.prometheus) }

// CloseStreams ends the UI's live event streams, which never go idle on their own: register
// it with http.Server.RegisterOnShutdown so that Shutdown need not wait for them.
func (s *Server) CloseStreams() { s.ui.events.Close() }

// Shutdown waits for the runs the server started. When ctx ends first, it cancels them — the
// engine records them as canceled — and still waits for them to return, then reports ctx's
// error. Requests that would start a run after Shutdown began get 503. Call it after
// http.Server.Shutdown (with the same deadline), so no new request arrives meanwhile; a
// lastNode request still waiting on its run is answered when the run ends or is canceled.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.runs.shutdown(ctx)
}

// errShutdown is the cause of the runs' context when Shutdown cancels it.
var errShutdown = errors.New("flowd is shutting down")

// errClosing is returned by launcher.start after Shutdown began.
var errClosing = errors.New("server is shutting down")

// errTooManyRuns is returned by launcher.start when the flow already has its most runs in
// flight. It stops a flow that calls its own webhook from piling up runs without end.
var errTooManyRuns = errors.New("too many runs of this flow in progress")

// DefaultMaxRunsPerFlow bounds the runs of one flow in flight when Config.MaxRunsPerFlow is 0.
const DefaultMaxRunsPerFlow = 1000

// launcher starts runs in the background on a context it owns and tracks them, so that
// Shutdown can wait for them and cancel them at its deadline.
type launcher struct {
	runner Runner
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu         sync.Mutex
	closing    bool
	wg         sync.WaitGroup
	inFlight   map[string]int // runs in progress by flow id
	maxPerFlow int
	workers    *workers
}

func newLauncher(r Runner, log *slog.Logger, maxPerFlow int) *launcher {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &launcher{runner: r, log: log, ctx: ctx, cancel: cancel, inFlight: map[string]int{}, maxPerFlow: maxPerFlow,
		workers: newWorkers(10 * time.Second)}
}

// startError answers a request whose run could not be started: 503 while shutting down,
// 429 with Retry-After when the flow has too many runs in flight.
func startError(w http.ResponseWriter, err error) (int, string) {
	if errors.Is(err, errTooManyRuns) {
		w.Header().Set("Retry-After", "1")
		return http.StatusTooManyRequests, err.Error() + "; try again later"
	}
	return http.StatusServiceUnavailable, "flowd is shutting down; try again later"
}

// runResult is what a background run ended with.
type runResult struct {
	run *engine.Run
	err error
}

// start runs f in the background and returns a channel that receives the result once (it is
// buffered: nobody has to read it). It fails with errClosing once shutdown has begun.
func (l *launcher) start(f *engine.Flow, req engine.RunRequest, requestID string) (<-chan runResult, error) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return nil, errClosing
	}
	if l.inFlight[f.ID] >= l.maxPerFlow {
		l.mu.Unlock()
		l.log.Warn("run refused: the flow has too many runs in progress", "flow", f.ID, "limit", l.maxPerFlow, "request", requestID)
		return nil, fmt.Errorf("flow %q: %d runs in progress: %w", f.ID, l.maxPerFlow, errTooManyRuns)
	}
	l.inFlight[f.ID]++
	l.wg.Add(1)
	l.mu.Unlock()

	done := make(chan runResult, 1)
	l.workers.run(func() {
		defer l.wg.Done()
		defer func() {
			l.mu.Lock()
			if l.inFlight[f.ID]--; l.inFlight[f.ID] == 0 {
				delete(l.inFlight, f.ID)
			}
			l.mu.Unlock()
		}()
		var res runResult
		defer func() { done <- res }()
		defer func() {
			if p := recover(); p != nil {
				l.log.Error("run panicked", "flow", f.ID, "run", req.ID, "request", requestID, "panic", p, "stack", string(debug.Stack()))
				res = runResult{err: fmt.Errorf("run %s of %s: panic: %v", req.ID, f.ID, p)}
			}
		}()
		res.run, res.err = l.runner.Run(l.ctx, f, req)
		if res.err != nil {
			l.log.Error("run failed to start or be recorded", "flow", f.ID, "run", req.ID, "mode", req.Mode, "request", requestID, "error", res.err)
		}
	})
	return done, nil
}

func (l *launcher) shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()

	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		l.workers.close()
		close(done)
	}()
	select {
	case <-done:
		l.cancel(errShutdown)
		return nil
	case <-ctx.Done():
		l.cancel(errShutdown)
		<-done
		return fmt.Errorf("shut down web server: runs still in progress were canceled: %w", ctx.Err())
	}
}

// errorBody is the shape of every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
	// RunID is set when the error is about a run that was started.
	RunID string `json:"runId,omitempty"`
}

// renderJSON encodes v into a buffer first, so an encoding error becomes a clean 500 rather
// than half a response.
func renderJSON(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, v any) {
	data, err := encodeJSON(v)
	if err != nil {
		log.Error("encode response", "path", r.URL.Path, "request", middleware.GetReqID(r.Context()), "error", err)
		status = http.StatusInternalServerError
		data, _ = encodeJSON(errorBody{Error: "encode response: " + err.Error(), Code: status})
	}
	w.Header()["Content-Type"] = jsonContentType
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// encodeJSON encodes v as one line of JSON, without escaping <, > and &.
func encodeJSON(v any) ([]byte, error) {
	b, err := engine.AppendJSON(make([]byte, 0, 512), v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// renderError answers {"error": msg, "code": status}.
func renderError(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, msg string) {
	renderJSON(w, r, log, status, errorBody{Error: msg, Code: status})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if wantsHTML(r) {
		secureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.ui.errorPage(w, r, http.StatusNotFound, "Page not found", fmt.Sprintf("There is no page at %s.", r.URL.Path))
		})).ServeHTTP(w, r)
		return
	}
	renderError(w, r, s.log, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
}

// methodNotAllowed answers 405 with an Allow header listing the methods the path has. chi
// does not pass its list to a custom handler, so it asks the router.
func (s *Server) methodNotAllowed(mux chi.Routes) http.HandlerFunc {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	return func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimSuffix(r.URL.Path, "/")
		var allow []string
		for _, m := range methods {
			if mux.Match(chi.NewRouteContext(), m, path) {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
		}
		renderError(w, r, s.log, http.StatusMethodNotAllowed, fmt.Sprintf("%s does not accept %s; use %s", r.URL.Path, r.Method, strings.Join(allow, ", ")))
	}
}

// recoverer turns a panic in a handler into a logged JSON 500, like chi's Recoverer but in
// flowd's error shape. http.ErrAbortHandler passes through: it aborts the response on purpose.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path,
				"request", middleware.GetReqID(r.Context()), "panic", p, "stack", string(debug.Stack()))
			renderError(w, r, s.log, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}
