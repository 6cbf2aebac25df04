package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/web"
)

// cmdRun runs one flow once, as a manual run, records it in the database and prints the run
// record as JSON. It exits 0 when the run succeeded and 1 when it did not.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr("FLOWD_DB", "data/flowd.db"), "SQLite database `path` or postgres:// URL (env FLOWD_DB)")
	trigger := fs.String("trigger", "", "`name` of the trigger node to start from (default: the first)")
	input := fs.String("input", "", `trigger item as JSON: {"json": {...}}, an object, or a list of them`)
	demo := fs.Bool("demo", false, "serve a throw-away OAuth2 token endpoint on 127.0.0.1 and point TOKEN_URL at it")
	var sf secretFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: flowd run FLOW.json [flags]")
		fs.PrintDefaults()
	}
	// Accept flags after the file name, as people type them.
	var file string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" || fs.NArg() > 1 {
		fs.Usage()
		return exitUsage
	}
	items, err := parseInput(*input)
	if err != nil {
		fmt.Fprintf(stderr, "flowd run: --input: %v\n", err)
		return exitUsage
	}
	sec, usage, err := sf.load(*demo)
	if err != nil {
		fmt.Fprintf(stderr, "flowd run: %v\n", err)
		if usage {
			return exitUsage
		}
		return exitProblem
	}
	logger := sec.logger(stderr)

	loader := &engine.Loader{Registry: nodes.NewRegistry(), Secrets: sec.store}
	flow, probs := loader.LoadFile(file)
	for _, p := range probs {
		fmt.Fprintln(stderr, p.Error())
	}
	if flow == nil {
		return exitFailed
	}

	env := environ()
	if *demo {
		stopDemo, url, err := startDemoIssuer(ctx, demoIssuer(sec.store, 0))
		if err != nil {
			fmt.Fprintf(stderr, "flowd run: %v\n", err)
			return exitProblem
		}
		defer stopDemo()
		if env["TOKEN_URL"] == "" {
			env["TOKEN_URL"] = url
		}
		logger.Info("demo token endpoint", "url", url)
	}

	store, _, err := openBackend(ctx, *db, newInstanceID())
	if err != nil {
		fmt.Fprintf(stderr, "flowd run: %v\n", err)
		return exitProblem
	}
	defer store.Close()
	static, err := sealedStore(store) // no survey: a bad key fails this one run, with the reason
	if err != nil {
		fmt.Fprintf(stderr, "flowd run: %v\n", err)
		return exitUsage
	}

	x := &engine.Executor{Store: static, Logger: logger, Env: env, Secrets: sec.store, Redactor: sec.redactor}
	rec, err := x.Run(ctx, flow, engine.RunRequest{Trigger: *trigger, Mode: "manual", Items: items})
	if err != nil {
		fmt.Fprintf(stderr, "flowd run: %v\n", err)
		if errors.Is(err, engine.ErrNoTrigger) {
			return exitUsage
		}
		return exitProblem
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rec.Redacted()); err != nil {
		fmt.Fprintf(stderr, "flowd run: print run: %v\n", err)
		return exitProblem
	}
	if rec.Status != engine.StatusSuccess {
		fmt.Fprintf(stderr, "run %s %s: %s\n", rec.ID, rec.Status, rec.Error)
		return exitFailed
	}
	return exitOK
}

// parseInput reads --input: {"json": {...}} (an n8n item), a plain object, or a list of either.
// Empty means the default single empty item.
func parseInput(s string) ([]engine.Item, error) {
	if s == "" {
		return nil, nil
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	items, err := engine.ItemsOf(v)
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		items[i] = engine.ToJSONValue(it).(map[string]any)
	}
	return items, nil
}

// startDemoIssuer serves a demo token endpoint on a free loopback port until stop is called.
func startDemoIssuer(ctx context.Context, issuer *web.DemoTokenIssuer) (stop func(), url string, err error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("start demo token endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/demo/oauth/token", issuer)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	return stop, "http://" + ln.Addr().String() + "/demo/oauth/token", nil
}

func environ() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}
