package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/redact"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/postgres"
	"github.com/flowd/flowd/web"
)

// serveConfig is what `flowd serve` is told on its command line or environment.
type serveConfig struct {
	Addr, DB, FlowsDir string
	Demo               bool
	DemoExpiresIn      time.Duration
	MaxBodyBytes       int64
	MaxRunsPerFlow     int
	ShutdownTimeout    time.Duration
	// Auth comes from the environment only: flags show in process listings.
	Auth *web.Auth
	// Insecure allows serving beyond loopback without authentication.
	Insecure bool
	// MetricsAddr, when set, serves /metrics there instead of on Addr.
	MetricsAddr string
	// PprofAddr, when set, serves /debug/pprof there (see startPprof).
	PprofAddr string
	// Secrets gives $secrets and is what flows' secret names are checked against; Redactor
	// redacts run records. nil: no secrets, records stored as they are (in-process tests).
	Secrets   engine.Secrets
	Redactor  *redact.Redactor
	Retention storage.Retention
	// ClusterTTL is how long an instance sharing its store with others counts as alive, and
	// holds the schedule lease, after its latest heartbeat (cluster.go).
	ClusterTTL time.Duration
}

// pruneInterval is how often flowd serve deletes the runs its retention settings do not keep.
const pruneInterval = time.Minute

// cmdServe serves every flow in a folder: webhooks, schedules, the JSON API. It returns when
// ctx is done (SIGINT, SIGTERM) and the server has shut down.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg serveConfig
	fs.StringVar(&cfg.Addr, "addr", envOr("FLOWD_ADDR", "127.0.0.1:5678"), "`address` to listen on (env FLOWD_ADDR)")
	fs.StringVar(&cfg.DB, "db", envOr("FLOWD_DB", "data/flowd.db"), "SQLite database `path`, or a postgres:// URL to share a PostgreSQL database between instances (env FLOWD_DB)")
	fs.StringVar(&cfg.FlowsDir, "flows", envOr("FLOWD_FLOWS", "flows"), "`folder` of flow files (env FLOWD_FLOWS)")
	fs.BoolVar(&cfg.Demo, "demo", envOr("FLOWD_DEMO", "") == "1", "serve a demo OAuth2 token endpoint at /demo/oauth/token and point TOKEN_URL at it (env FLOWD_DEMO=1)")
	fs.DurationVar(&cfg.DemoExpiresIn, "demo-expires-in", time.Hour, "lifetime of demo tokens")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body", 1<<20, "largest webhook request body in `bytes`")
	fs.IntVar(&cfg.MaxRunsPerFlow, "max-runs-per-flow", web.DefaultMaxRunsPerFlow, "most runs of one flow in progress at once; more get 429 (stops a flow calling itself from piling up)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long runs in flight may take to finish on shutdown")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "allow listening beyond loopback without authentication (FLOWD_AUTH_TOKEN, or FLOWD_AUTH_USER and FLOWD_AUTH_PASSWORD_HASH)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", envOr("FLOWD_METRICS_ADDR", ""), "serve /metrics on this `address` only, without authentication (env FLOWD_METRICS_ADDR)")
	cfg.Auth = &web.Auth{
		Token: os.Getenv("FLOWD_AUTH_TOKEN"), User: os.Getenv("FLOWD_AUTH_USER"), PasswordHash: os.Getenv("FLOWD_AUTH_PASSWORD_HASH"),
	}
	var sf secretFlags
	sf.register(fs)
	fs.DurationVar(&cfg.Retention.MaxAge, "retention-max-age", 336*time.Hour, "delete finished runs older than this `duration`; 0 keeps them (env FLOWD_RETENTION_MAX_AGE)")
	fs.IntVar(&cfg.Retention.MaxRunsPerFlow, "retention-max-runs", 0, "keep only the newest `n` runs of each flow; 0: no limit (env FLOWD_RETENTION_MAX_RUNS)")
	fs.DurationVar(&cfg.ClusterTTL, "cluster-ttl", defaultClusterTTL, "with a shared database: how long an instance counts as alive after its latest heartbeat (sent every ttl/4), and so how soon another takes its schedules over; at least 1s (env FLOWD_CLUSTER_TTL)")
	for name, env := range map[string]string{"retention-max-age": "FLOWD_RETENTION_MAX_AGE", "retention-max-runs": "FLOWD_RETENTION_MAX_RUNS", "cluster-ttl": "FLOWD_CLUSTER_TTL"} {
		if v := os.Getenv(env); v != "" {
			if err := fs.Set(name, v); err != nil {
				fmt.Fprintf(stderr, "flowd serve: %s=%q: %v\n", env, v, err)
				return exitUsage
			}
		}
	}
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", envOr("FLOWD_PPROF_ADDR", ""), "serve /debug/pprof/ on this separate `address`; a bare :port means 127.0.0.1; empty: off (env FLOWD_PPROF_ADDR)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: flowd serve [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	tuneGC()
	if err := cfg.Retention.Validate(); err != nil {
		fmt.Fprintf(stderr, "flowd serve: %v\n", err)
		return exitUsage
	}
	if cfg.ClusterTTL < minClusterTTL {
		fmt.Fprintf(stderr, "flowd serve: --cluster-ttl %s: must be at least %s\n", cfg.ClusterTTL, minClusterTTL)
		return exitUsage
	}
	sec, usage, err := sf.load(cfg.Demo)
	if err != nil {
		fmt.Fprintf(stderr, "flowd serve: %v\n", err)
		if usage {
			return exitUsage
		}
		return exitProblem
	}
	cfg.Secrets, cfg.Redactor = sec.store, sec.redactor
	logger := sec.logger(stderr)
	if err := checkExposure(cfg); err != nil {
		logger.Error("not starting", "error", err)
		return exitProblem
	}
	if cfg.PprofAddr != "" {
		stopPprof, err := startPprof(ctx, cfg.PprofAddr, logger)
		if err != nil {
			logger.Error("not starting", "error", err)
			return exitProblem
		}
		defer stopPprof()
	}
	a, err := startApp(ctx, cfg, logger)
	if err != nil {
		var probs engine.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintln(stderr, p.Error())
			}
			logger.Error("not starting: invalid flows", "flows", cfg.FlowsDir, "problems", len(probs.Errors()))
			return exitFailed
		}
		logger.Error("not starting", "error", err)
		return exitProblem
	}
	serveErr := a.wait(ctx)
	if serveErr != nil {
		logger.Error("stopped serving HTTP", "error", serveErr)
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.shutdown(sctx); err != nil {
		logger.Error("shutdown", "error", err)
		return exitProblem
	}
	if serveErr != nil {
		return exitProblem
	}
	logger.Info("stopped")
	return exitOK
}

// app is a running flowd server: store, flows, scheduler and HTTP server. Tests start one in
// process on 127.0.0.1:0.
type app struct {
	cfg   serveConfig
	log   *slog.Logger
	store storage.Backend
	// instanceID names this process among instances sharing the store (store.go); runs it
	// starts on PostgreSQL are stamped with it.
	instanceID string
	loader     *engine.Loader
	flows      flowHolder
	sched      *scheduler
	// member is this process's part in a cluster sharing the store; nil when it runs alone.
	member *member
	// stopListen stops hearing the runs of other instances on the store (a no-op if it can't).
	stopListen func()
	web        *web.Server
	http       *http.Server
	// metricsHTTP serves /metrics with --metrics-addr; nil otherwise.
	metricsHTTP *http.Server
	ln          net.Listener
	served      chan struct{} // closed when http.Server.Serve has returned, with serveErr
	serveErr    error
	reloads     sync.Mutex
	stopWatch   context.CancelFunc
	watchDone   chan struct{}
	// hup receives SIGHUP from start until shutdown has finished: a SIGHUP while runs drain
	// is ignored rather than left to its default action, which would kill the process.
	hup chan os.Signal
}

// flowHolder is the live flow set, swapped atomically on reload.
type flowHolder struct{ p atomic.Pointer[web.FlowSet] }

func (h *flowHolder) Current() *web.FlowSet { return h.p.Load() }

// startApp opens the store, marks runs a previous process left running as crashed, loads and
// checks every flow, and starts serving. It refuses to start on any invalid flow, returning
// the problems as engine.Problems.
func startApp(ctx context.Context, cfg serveConfig, logger *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: logger, loader: &engine.Loader{Registry: nodes.NewRegistry(), Secrets: cfg.Secrets}, served: make(chan struct{})}
	flows, set, err := a.load()
	if err != nil {
		return nil, err
	}

	a.instanceID = newInstanceID()
	store, dbDesc, err := openBackend(ctx, cfg.DB, a.instanceID)
	if err != nil {
		return nil, err
	}
	a.store = store
	if n, err := store.MarkCrashed(ctx, time.Now()); err != nil {
		store.Close()
		return nil, err
	} else if n > 0 {
		logger.Warn("marked runs left running by a previous process as crashed", "runs", n)
	}
	if err := store.StartPruning(cfg.Retention, pruneInterval, logger); err != nil {
		store.Close()
		return nil, err
	}
	static, err := sealedStore(store) // static data encrypted at rest: rotatekey.go
	if err == nil {
		err = checkStaticKeys(ctx, static, logger)
	}
	if err != nil {
		store.Close()
		return nil, err
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	a.ln = ln

	env := environ()
	var demo http.Handler
	if cfg.Demo {
		demo = demoIssuer(cfg.Secrets, cfg.DemoExpiresIn)
		if env["TOKEN_URL"] == "" {
			env["TOKEN_URL"] = "http://" + ln.Addr().String() + "/demo/oauth/token"
		}
		logger.Info("demo token endpoint", "url", "http://"+ln.Addr().String()+"/demo/oauth/token", "expiresIn", cfg.DemoExpiresIn)
	}

	metrics := web.NewMetrics()
	if g, ok := store.(interface{ WriterStats() storage.WriterStats }); ok { // SQLite's group commit
		metrics.CountStoreWrites(func() (int64, int64) { st := g.WriterStats(); return st.Commits, st.Writes })
	}
	events := web.NewEvents() // the UI's live updates, fed by every run whatever started it
	exec := &engine.Executor{Store: events.Store(metrics.Store(static)), Logger: logger, Env: env, Secrets: cfg.Secrets, Redactor: cfg.Redactor}
	if l, ok := store.(engine.Locker); ok { // flow locks across every instance on the store
		exec.Locker = l
	}
	a.flows.p.Store(set)
	a.sched = newScheduler(exec.Run, store, logger, time.Now)
	a.member = joinCluster(store, a.instanceID, a.sched, cfg.ClusterTTL, logger)
	a.sched.Apply(ctx, flows)
	if a.member != nil {
		// Beat before serving, so that no run is stamped with an instance others think dead.
		a.member.setFlows(flows)
		if err := a.member.start(ctx); err != nil {
			ln.Close()
			store.Close()
			return nil, err
		}
	}
	a.stopListen = func() {}
	if l, ok := store.(runListener); ok { // the UI's live updates for runs of other instances
		stop, err := l.ListenRuns(context.WithoutCancel(ctx), func(n postgres.RunNotice) {
			if n.Resync {
				events.Resync()
				return
			}
			events.Publish(web.RunEvent{ID: n.ID, FlowID: n.FlowID, Status: n.Status})
		}, logger)
		if err != nil {
			ln.Close()
			if a.member != nil {
				_ = a.member.leave(ctx)
			}
			store.Close()
			return nil, err
		}
		a.stopListen = stop
	}
	var cluster func() web.ClusterStatus
	if a.member != nil {
		cluster = a.member.Status
	}
	a.web = web.New(web.Config{
		Flows:           &a.flows,
		Runner:          exec,
		Runs:            store,
		Static:          static,
		Schedules:       a.sched,
		Health:          store.Ping,
		Cluster:         cluster,
		Metrics:         metrics,
		Events:          events,
		Auth:            cfg.Auth,
		Secrets:         cfg.Secrets,
		SeparateMetrics: cfg.MetricsAddr != "",
		MaxBodyBytes:    cfg.MaxBodyBytes,
		MaxRunsPerFlow:  cfg.MaxRunsPerFlow,
		Demo:            demo,
		Logger:          logger,
	})
	a.http = &http.Server{
		Handler:           a.web.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	a.http.RegisterOnShutdown(a.web.CloseStreams)
	go func() {
		a.serveErr = a.http.Serve(ln)
		close(a.served)
	}()
	if cfg.MetricsAddr != "" {
		if err := a.serveMetrics(ctx); err != nil {
			_ = a.http.Close()
			<-a.served
			if a.member != nil {
				_ = a.member.leave(ctx) // nothing ran: the others may forget this instance now
			}
			a.stopListen()
			store.Close()
			return nil, err
		}
	}
	a.sched.Start()

	// Watch before saying we listen, so that no change after that line is missed.
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopWatch, a.watchDone = stop, make(chan struct{})
	a.hup = make(chan os.Signal, 1)
	signal.Notify(a.hup, syscall.SIGHUP)
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(cfg.FlowsDir); err != nil {
			w.Close()
		}
	}
	if err != nil {
		logger.Warn("not watching the flows folder; reload with SIGHUP", "error", err)
		w = nil
	}
	go a.watch(wctx, a.hup, w)

	logger.Info("listening", "addr", ln.Addr().String(), "db", dbDesc, "flows", cfg.FlowsDir, "instance", a.instanceID)
	a.logFlows(flows)
	return a, nil
}

// runListener is a store that hears the runs other instances sharing it start and end.
type runListener interface {
	ListenRuns(ctx context.Context, fn func(postgres.RunNotice), logger *slog.Logger) (stop func(), err error)
}

// checkExposure refuses a configuration that would put flowd on a network unprotected: the
// main listener beyond loopback needs authentication, and the metrics and profiling
// listeners, which have none, must stay on loopback — unless --insecure says otherwise.
func checkExposure(cfg serveConfig) error {
	if cfg.Auth != nil {
		if err := cfg.Auth.Check(); err != nil {
			return fmt.Errorf("authentication: %w", err)
		}
	}
	if cfg.Insecure {
		return nil
	}
	if !isLoopback(cfg.Addr) && !cfg.Auth.Enabled() {
		return fmt.Errorf("refusing to listen on %s, beyond loopback, without authentication: set FLOWD_AUTH_TOKEN "+
			"(or FLOWD_AUTH_USER and FLOWD_AUTH_PASSWORD_HASH), listen on 127.0.0.1, or pass --insecure", cfg.Addr)
	}
	for _, l := range []struct{ what, addr string }{{"metrics", cfg.MetricsAddr}, {"/debug/pprof", pprofListenAddr(cfg.PprofAddr)}} {
		// A malformed address is left to the listener to explain.
		if _, _, err := net.SplitHostPort(l.addr); err == nil && !isLoopback(l.addr) {
			return fmt.Errorf("refusing to serve %s on %s, beyond loopback, without authentication: use a loopback address or pass --insecure", l.what, l.addr)
		}
	}
	return nil
}

// isLoopback tells whether a listen address stays on this machine. A host name other than
// localhost counts as beyond loopback: resolving it here would prove nothing about later.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveMetrics serves /metrics on a listener of its own.
func (a *app) serveMetrics(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", a.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.web.MetricsHandler())
	a.metricsHTTP = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	go func() {
		if err := a.metricsHTTP.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics listener stopped", "addr", a.cfg.MetricsAddr, "error", err)
		}
	}()
	a.log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// wait blocks until ctx is done, and returns nil, or until the HTTP server stops serving on
// its own (its listener failed), and returns why. Either way the caller shuts the app down.
func (a *app) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-a.served:
		return fmt.Errorf("serve HTTP: %w", a.serveErr)
	}
}

// Addr is where the app listens.
func (a *app) Addr() string { return a.ln.Addr().String() }

// load loads every flow in the folder and builds the webhook routes. Any error — in a file,
// or two flows claiming one webhook — is returned as engine.Problems; warnings are logged.
func (a *app) load() ([]*engine.Flow, *web.FlowSet, error) {
	flows, probs := a.loader.LoadDir(a.cfg.FlowsDir)
	for _, p := range probs.Warnings() {
		a.log.Warn(p.Error())
	}
	if errs := probs.Errors(); len(errs) > 0 {
		return nil, nil, errs
	}
	set, err := web.NewFlowSet(flows)
	if err != nil {
		return nil, nil, engine.Problems{{File: a.cfg.FlowsDir, Msg: err.Error()}}
	}
	// A webhook whose credential is missing would answer every request with 500: refuse it
	// at load, as a missing $secrets name is.
	if errs := web.CheckWebhookSecrets(set, a.cfg.Secrets); len(errs) > 0 {
		probs := make(engine.Problems, len(errs))
		for i, e := range errs {
			probs[i] = &engine.Problem{File: a.cfg.FlowsDir, Msg: e.Error()}
		}
		return nil, nil, probs
	}
	return flows, set, nil
}

func (a *app) logFlows(flows []*engine.Flow) {
	for _, f := range flows {
		a.log.Info("flow", "id", f.ID, "file", f.File, "version", f.Version, "nodes", len(f.Nodes))
		for _, t := range f.Triggers {
			switch tr := t.Impl.(type) {
			case *nodes.Webhook:
				if t.Disabled { // no route
					a.log.Info("webhook", "flow", f.ID, "trigger", t.Name, "disabled", true)
					continue
				}
				a.log.Info("webhook", "flow", f.ID, "trigger", t.Name, "methods", strings.Join(tr.Methods, ","), "url", "http://"+a.Addr()+"/webhook/"+tr.Path, "responseMode", tr.ResponseMode)
			case *nodes.Schedule:
				if t.Disabled { // not scheduled
					a.log.Info("schedule", "flow", f.ID, "trigger", t.Name, "disabled", true)
					continue
				}
				next, ok := a.sched.NextFire(f.ID, t.Name)
				if !ok { // a cron expression that never matches
					a.log.Warn("schedule", "flow", f.ID, "trigger", t.Name, "next", "never")
					continue
				}
				a.log.Info("schedule", "flow", f.ID, "trigger", t.Name, "next", next.Format(time.RFC3339))
			}
		}
	}
}

// reload loads the folder again and swaps the flows in atomically. An invalid edit keeps the
// running version and logs why; runs in flight finish on the version they started with.
func (a *app) reload(ctx context.Context, why string) {
	a.reloads.Lock()
	defer a.reloads.Unlock()
	flows, set, err := a.load()
	if err != nil {
		var probs engine.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				a.log.Error("reload: " + p.Error())
			}
		}
		a.log.Error("reload rejected: keeping the running flows", "trigger", why)
		return
	}
	a.flows.p.Store(set)
	a.sched.Apply(ctx, flows)
	if a.member != nil {
		a.member.setFlows(flows)
	}
	a.log.Info("reloaded flows", "trigger", why, "flows", len(flows))
	a.logFlows(flows)
}

// watch reloads on SIGHUP (hup) and on changes to *.json files in the flows folder (w may be nil).
// Changes are gathered for a moment first, since editors write a file in several steps.
func (a *app) watch(ctx context.Context, hup chan os.Signal, w *fsnotify.Watcher) {
	defer close(a.watchDone)
	var events chan fsnotify.Event
	var errs chan error
	if w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	const settle = 150 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-hup:
			a.reload(ctx, "SIGHUP")
		case ev := <-events:
			if filepath.Ext(ev.Name) == ".json" {
				timer.Reset(settle)
			}
		case err := <-errs:
			a.log.Warn("watching the flows folder", "error", err)
		case <-timer.C:
			a.reload(ctx, "file change")
		}
	}
}

// answerGrace is how long requests still open at the shutdown deadline get to send their
// answers once their runs are cancelled.
const answerGrace = 2 * time.Second

// shutdown stops in order: no more reloads or schedule ticks, no new requests; then runs in
// flight finish until ctx's deadline, after which they are cancelled (and recorded as such);
// the store closes last. SIGHUP is ignored until it returns.
func (a *app) shutdown(ctx context.Context) error {
	defer signal.Stop(a.hup)
	a.stopWatch()
	<-a.watchDone
	// Both kinds of trigger stop at once: no tick fires and no connection is accepted while
	// the other waits for its runs.
	var schedErr, httpErr error
	var wg sync.WaitGroup
	wg.Go(func() { schedErr = a.sched.Stop(ctx) })
	if a.member != nil {
		// Once no tick fires here, let another instance take the schedules over at once.
		wg.Go(func() { <-a.sched.stopping.Done(); a.member.resign(ctx) })
	}
	wg.Go(func() { httpErr = a.http.Shutdown(ctx) })
	if a.metricsHTTP != nil {
		wg.Go(func() { _ = a.metricsHTTP.Shutdown(ctx) })
	}
	wg.Wait()
	var errs []error
	if schedErr != nil {
		errs = append(errs, fmt.Errorf("stop schedules: %w", schedErr))
	}
	if httpErr != nil {
		errs = append(errs, fmt.Errorf("stop http: %w", httpErr))
	}
	if err := a.web.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("drain runs: %w", err))
	}
	if httpErr != nil {
		// Requests were still open at the deadline: lastNode callers whose runs were just
		// cancelled are being answered. Let them finish before the store closes and the
		// process exits.
		gctx, cancel := context.WithTimeout(context.Background(), answerGrace)
		if err := a.http.Shutdown(gctx); err != nil {
			a.log.Warn("requests still open after the shutdown deadline are cut off", "error", err)
		}
		cancel()
	}
	<-a.served // wait() reported any error of its own
	if a.member != nil {
		// After the runs: until then they belong to a live instance. Even past the deadline.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), answerGrace)
		if err := a.member.leave(lctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	a.stopListen() // the event streams it fed closed with the HTTP server
	if err := a.store.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
