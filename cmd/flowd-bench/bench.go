package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is what one benchmark run does; see the flags in main.go.
type config struct {
	Repo       string // the flowd repository: built when Flowd is empty; holds Flow
	Flowd      string // flowd binary; "" builds one from Repo
	Flow       string // the token flow file
	Duration   time.Duration
	Warmup     time.Duration
	Conc       []int
	Sections   []string // of allSections
	RSSRuns    int      // runs to drive before the "after N runs" RSS figure
	Flows      int      // flows loaded in the scale run
	ScaleConc  int
	Rounds     int  // slices each load is measured in, alternating between targets
	BareInProc bool // also measure the bare handler inside this process, as a reference
	DBRuns     int  // runs seeded for the runs API timings
	APIReps    int
	CPUProfile string // where to write a CPU profile of flowd under the highest concurrency; "" none
	Keep       bool   // keep the temp dir
}

var allSections = []string{"load", "rss", "scale", "runs"}

func (c *config) has(section string) bool { return slices.Contains(c.Sections, section) }

// The load section's targets.
const (
	targetBare       = "bare"             // the bare handler in its own process: the floor
	targetBareInProc = "bare, in-process" // the bare handler in this process: a reference
	targetFlowd      = "flowd"
)

// loadRow is one load measurement: a target at a concurrency.
type loadRow struct {
	Target string // one of the target* constants; in the scale section, the flows loaded
	Conc   int
	Result *loadResult
	Total  int64 // requests sent, warm-up included
	// ServerCPU and ToolCPU are the cores the server's process (flowd, or the bare handler's
	// own) and this process (the load generator, and the handler for targetBareInProc, whose
	// ServerCPU is 0) used during the measured period.
	ServerCPU, ToolCPU float64
	// OtherCPU is the cores the rest of the machine used meanwhile: other processes and the
	// kernel. More than a little means the figures are disturbed.
	OtherCPU float64
	// WritesPerCommit is, for flowd, the run writes per group commit of its store while this
	// concurrency ran, warm-up included (flowd's /metrics); 0 when unknown.
	WritesPerCommit float64
}

// apiRow is the timing of one GET on flowd with the database full of runs.
type apiRow struct {
	Name, Path string
	Latency    *histogram // nil: not served
	Note       string
}

// results is everything a benchmark run measured. A zero field was not measured.
type results struct {
	Cfg     config
	Machine machine
	Flowd   string // binary path and version

	Load          []loadRow
	TokenCalls    int64 // token endpoint calls while load ran (want 0: steady state)
	StartNewDB    time.Duration
	StartBig      time.Duration // with Cfg.Flows flows and Cfg.DBRuns runs
	RSSIdle       int64
	RSSAfterLoad  int64
	RSSAfterN     int64
	RSSRunsServed int64
	RSSLoad       *loadResult
	DBBytes       int64
	DBRuns        int64

	Scale []loadRow // 1 flow, then Cfg.Flows flows

	Seeded     int64         // runs in the database for the API timings
	SeedTime   time.Duration // to insert Cfg.DBRuns runs
	DeepCursor string
	API        []apiRow
	Profile    string // CPU profile written
}

// bench runs the sections cfg asks for, saying what it does on progress, and returns what it
// measured. Every process it starts is ended and its temp dir removed before it returns,
// also on error or when ctx is cancelled.
func bench(ctx context.Context, cfg config, progress io.Writer) (_ *results, err error) {
	began := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(progress, "flowd-bench %5.1fs: "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
	}
	res := &results{Cfg: cfg, Machine: thisMachine()}

	tmp, err := os.MkdirTemp("", "flowd-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if cfg.Keep {
		say("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	bin := cfg.Flowd
	if bin == "" {
		say("building flowd from %s", cfg.Repo)
		if bin, err = buildFlowd(ctx, cfg.Repo, tmp); err != nil {
			return nil, err
		}
	}
	res.Flowd = flowdVersion(ctx, bin)
	tokenFlow, err := os.ReadFile(cfg.Flow)
	if err != nil {
		return nil, fmt.Errorf("token flow: %w", err)
	}
	tokens, err := startTokenEndpoint()
	if err != nil {
		return nil, err
	}
	defer tokens.Close()
	env := []string{"TOKEN_URL=" + tokens.URL("/oauth/token"), "FLOWD_SECRET_CLIENT_ID=flowd-bench", "FLOWD_SECRET_CLIENT_SECRET=flowd-bench-secret"}

	// procs are killed on the way out whatever happens; a clean stop before makes it a no-op.
	var procs []*flowdProc
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	n := 0
	start := func(flowsDir, db string, pprof bool) (*flowdProc, error) {
		n++
		p, err := startFlowd(flowdOpts{Bin: bin, FlowsDir: flowsDir, DB: db, Env: env, Pprof: pprof,
			LogPath: filepath.Join(tmp, fmt.Sprintf("flowd-%d.log", n))})
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}
	mkdir := func(name string, flows int) (dir, db string, list []seedFlow, err error) {
		base := filepath.Join(tmp, name)
		dir = filepath.Join(base, "flows")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", nil, err
		}
		list, err = writeFlows(dir, flows, tokenFlow)
		return dir, filepath.Join(base, "flowd.db"), list, err
	}

	if cfg.has("load") || cfg.has("rss") {
		if err := benchLoad(ctx, cfg, res, say, mkdir, start, tokens); err != nil {
			return res, err
		}
	}
	var bigDir, bigDB string
	var bigFlows []seedFlow
	if cfg.has("scale") || cfg.has("runs") {
		if bigDir, bigDB, bigFlows, err = mkdir("many", cfg.Flows); err != nil {
			return res, err
		}
	}
	if cfg.has("scale") {
		if err := benchScale(ctx, cfg, res, say, mkdir, start, bigDir, bigDB); err != nil {
			return res, err
		}
	}
	if cfg.has("runs") {
		if err := benchRuns(ctx, cfg, res, say, start, bigDir, bigDB, bigFlows); err != nil {
			return res, err
		}
	}
	return res, nil
}

type (
	sayFunc   func(format string, args ...any)
	mkdirFunc func(name string, flows int) (dir, db string, list []seedFlow, err error)
	startFunc func(flowsDir, db string, pprof bool) (*flowdProc, error)
)

// benchLoad: flowd with the token flow against the bare handler at each concurrency; start
// time, RSS idle, after the load and after RSSRuns runs; database bytes per run.
func benchLoad(ctx context.Context, cfg config, res *results, say sayFunc, mkdir mkdirFunc, start startFunc, tokens *tokenEndpoint) error {
	dir, db, _, err := mkdir("load", 1)
	if err != nil {
		return err
	}
	p, err := start(dir, db, cfg.CPUProfile != "")
	if err != nil {
		return err
	}
	want, took, err := p.waitWebhook(ctx, tokenWebhook)
	if err != nil {
		return err
	}
	if err := checkTokenAnswer(want); err != nil {
		return err
	}
	res.StartNewDB = took
	say("flowd served its first webhook %s after start (new database); answer %s", ms(took), strings.TrimSpace(string(want)))
	if res.RSSIdle, err = p.RSS(); err != nil {
		return err
	}
	served := int64(1)

	if cfg.has("load") {
		targets, err := loadTargets(ctx, cfg, want, p)
		if err != nil {
			return err
		}
		defer func() {
			for _, t := range targets {
				if t.kill != nil {
					t.kill()
				}
			}
		}()
		hits := tokens.hits.Load()
		top := slices.Max(cfg.Conc)
		for _, c := range cfg.Conc {
			names := make([]string, len(targets))
			for i, t := range targets {
				names[i] = strconv.Quote(t.name)
			}
			say("load: %s and %s at concurrency %d, %s each in %d alternating slices after %s warm-up",
				strings.Join(names[:len(names)-1], ", "), names[len(names)-1], c, cfg.Duration, cfg.Rounds, cfg.Warmup)
			before, err := p.storeWrites(ctx)
			if err != nil {
				return err
			}
			use := make([]cpuUse, len(targets))
			var profiles []string
			sliced := make([]*slicedTarget, len(targets))
			for i, t := range targets {
				sliced[i] = &slicedTarget{URL: t.url, Want: want, Slice: func() func() error {
					meter := startCPUMeter(append(t.pids, 0)...)
					var prof chan error
					if t.name == targetFlowd && c == top && cfg.CPUProfile != "" {
						path := fmt.Sprintf("%s.%d", cfg.CPUProfile, len(profiles)+1)
						profiles = append(profiles, path)
						prof = make(chan error, 1)
						go func() {
							prof <- p.cpuProfile(ctx, max(1, int((cfg.Duration/time.Duration(cfg.Rounds)).Seconds())), path)
						}()
					}
					return func() error {
						use[i].add(meter.Stop())
						if prof != nil {
							return <-prof
						}
						return nil
					}
				}}
			}
			results, err := alternate(ctx, sliced, c, cfg.Warmup, cfg.Duration, cfg.Rounds)
			if err != nil {
				return err
			}
			after, err := p.storeWrites(ctx)
			if err != nil {
				return err
			}
			for i, t := range targets {
				r := results[i]
				row := loadRow{Target: t.name, Conc: c, Result: r, Total: r.Total, ToolCPU: use[i].Cores(len(t.pids)), OtherCPU: use[i].Cores(-1)}
				server := "in this tool"
				if len(t.pids) > 0 {
					row.ServerCPU = use[i].Cores(0)
					server = fmt.Sprintf("%.2f", row.ServerCPU)
				}
				if t.name == targetFlowd {
					served += r.Total
					if commits := after.commits - before.commits; commits > 0 {
						row.WritesPerCommit = float64(after.writes-before.writes) / float64(commits)
					}
				}
				say("  %s: %.0f runs/s, p50 %s, p99 %s, %d errors %s; cores used: server %s, this tool %.2f, the rest %.2f", row.Target,
					r.RunsPerSec(), ms(r.Latency.Quantile(0.5)), ms(r.Latency.Quantile(0.99)), r.Errors, r.FirstError, server, row.ToolCPU, row.OtherCPU)
				res.Load = append(res.Load, row)
			}
			if len(profiles) > 0 {
				if err := mergeProfiles(ctx, cfg.CPUProfile, profiles); err != nil {
					return err
				}
				res.Profile = cfg.CPUProfile
			}
		}
		for _, t := range targets {
			if t.stop == nil {
				continue
			}
			if err := t.stop(); err != nil {
				return err
			}
		}
		res.TokenCalls = tokens.hits.Load() - hits
		if res.RSSAfterLoad, err = p.RSS(); err != nil {
			return err
		}
	}

	if cfg.has("rss") {
		if more := int64(cfg.RSSRuns) - served; more > 0 {
			say("rss: %d more runs at concurrency 64, to %d in all", more, cfg.RSSRuns)
			l := &load{URL: p.URL(tokenWebhook), Workers: 64, Count: int(more), Want: want}
			r, err := l.run(ctx)
			if err != nil {
				return err
			}
			res.RSSLoad = r
			served += r.Total
			say("  %.0f runs/s, %d errors %s", r.RunsPerSec(), r.Errors, r.FirstError)
		}
		res.RSSRunsServed = served
		if res.RSSAfterN, err = p.RSS(); err != nil {
			return err
		}
	}

	say("stopping flowd (SIGTERM) to measure the database")
	if err := p.stop(); err != nil {
		return err
	}
	if res.DBBytes, res.DBRuns, err = dbStats(ctx, db); err != nil {
		return err
	}
	say("  %d runs recorded in %d bytes", res.DBRuns, res.DBBytes)
	return nil
}

// loadTarget is one server the load section drives.
type loadTarget struct {
	name string
	url  string
	pids []int // the server's process, metered apart from this one; none when in this process
	// stop ends the server cleanly, kill at once (a no-op after stop); both are nil for
	// flowd, which the caller ends.
	stop func() error
	kill func()
}

// loadTargets starts the bare handlers and returns the load section's targets in the order
// they are measured in: the bare handler in its own process, in this process unless
// cfg.BareInProc is off, then flowd, which runs as p. On error, the handlers it started are
// ended.
func loadTargets(ctx context.Context, cfg config, want []byte, p *flowdProc) ([]loadTarget, error) {
	bp, err := startBareProc(ctx, want)
	if err != nil {
		return nil, err
	}
	targets := []loadTarget{{name: targetBare, url: bp.URL(tokenWebhook), pids: []int{bp.Pid()}, stop: bp.stop, kill: bp.kill}}
	if cfg.BareInProc {
		in, err := startBare(want)
		if err != nil {
			bp.kill()
			return nil, err
		}
		targets = append(targets, loadTarget{name: targetBareInProc, url: in.URL(tokenWebhook),
			stop: func() error { in.Close(); return nil }, kill: in.Close})
	}
	return append(targets, loadTarget{name: targetFlowd, url: p.URL(tokenWebhook), pids: []int{p.Pid()}}), nil
}

// benchScale: the same load with one flow and with cfg.Flows flows loaded, each flowd on a
// new database, both running and measured in alternating slices. The many-flows database
// (at bigDB) is kept for benchRuns.
func benchScale(ctx context.Context, cfg config, res *results, say sayFunc, mkdir mkdirFunc, start startFunc, bigDir, bigDB string) error {
	oneDir, oneDB, _, err := mkdir("one", 1)
	if err != nil {
		return err
	}
	var procs []*flowdProc
	var targets []*slicedTarget
	for _, s := range []struct {
		dir, db string
		flows   int
	}{{oneDir, oneDB, 1}, {bigDir, bigDB, cfg.Flows}} {
		p, err := start(s.dir, s.db, false)
		if err != nil {
			return err
		}
		want, took, err := p.waitWebhook(ctx, tokenWebhook)
		if err != nil {
			return err
		}
		if err := checkFlowCount(ctx, p, s.flows); err != nil {
			return err
		}
		say("scale: flowd with %d flow(s) served its first webhook %s after start", s.flows, ms(took))
		procs = append(procs, p)
		targets = append(targets, &slicedTarget{URL: p.URL(tokenWebhook), Want: want})
	}
	say("scale: 1 flow and %d flows at concurrency %d, %s each in %d alternating slices", cfg.Flows, cfg.ScaleConc, cfg.Duration, cfg.Rounds)
	results, err := alternate(ctx, targets, cfg.ScaleConc, cfg.Warmup, cfg.Duration, cfg.Rounds)
	if err != nil {
		return err
	}
	for i, r := range results {
		name := "1 flow"
		if i == 1 {
			name = thousands(int64(cfg.Flows)) + " flows"
		}
		say("  %s: %.0f runs/s, p50 %s, p99 %s, %d errors %s", name, r.RunsPerSec(), ms(r.Latency.Quantile(0.5)), ms(r.Latency.Quantile(0.99)), r.Errors, r.FirstError)
		res.Scale = append(res.Scale, loadRow{Target: name, Conc: cfg.ScaleConc, Result: r, Total: r.Total})
	}
	for _, p := range procs {
		if err := p.stop(); err != nil {
			return err
		}
	}
	return nil
}

// benchRuns: cfg.DBRuns runs seeded into the many-flows database, then flowd restarted on it
// and the runs API and page timed.
func benchRuns(ctx context.Context, cfg config, res *results, say sayFunc, start startFunc, dir, db string, flows []seedFlow) error {
	if _, err := os.Stat(db); err != nil { // the scale run did not make it: let flowd create it
		p, err := start(dir, db, false)
		if err != nil {
			return err
		}
		if _, _, err := p.waitWebhook(ctx, tokenWebhook); err != nil {
			return err
		}
		if err := p.stop(); err != nil {
			return err
		}
	}
	say("runs: inserting %d runs into the database", cfg.DBRuns)
	t0 := time.Now()
	cursor, err := seedRuns(ctx, db, cfg.DBRuns, flows, cfg.DBRuns*9/10)
	if err != nil {
		return err
	}
	res.SeedTime, res.DeepCursor = time.Since(t0), cursor
	say("  done in %s", res.SeedTime.Round(time.Millisecond))

	p, err := start(dir, db, false)
	if err != nil {
		return err
	}
	_, took, err := p.waitWebhook(ctx, tokenWebhook)
	if err != nil {
		return err
	}
	res.StartBig = took
	say("runs: flowd with %d flows and %d runs served its first webhook %s after start", cfg.Flows, cfg.DBRuns, ms(took))

	flow := flows[len(flows)/2].ID
	client := &http.Client{Timeout: time.Minute}
	for _, q := range []struct {
		name, path, note string
		full             bool // the page must have runs
	}{
		{"API, first page", "/api/runs?limit=50", "", true},
		{"API, deep cursor", "/api/runs?limit=50&before=" + cursor, fmt.Sprintf("before= the run %s deep", thousands(int64(cfg.DBRuns*9/10))), true},
		{"API, by flow", "/api/runs?limit=50&flow=" + flow, "", false},
		{"API, by status", "/api/runs?limit=50&status=error", "2% of runs", false},
		{"API, by flow and status", "/api/runs?limit=50&flow=" + tokenFlowID + "&status=error", "", false},
		{"UI runs page", "/runs", "", false},
	} {
		check := func(body []byte) error {
			return checkRunsPage(body, cursor, strings.Contains(q.path, "before="), q.full)
		}
		if !strings.HasPrefix(q.path, "/api/") {
			check = func([]byte) error { return nil }
		}
		h, err := timeGET(ctx, client, p.URL(q.path), cfg.APIReps, check)
		if errors.Is(err, errNotServed) {
			res.API = append(res.API, apiRow{Name: q.name, Path: q.path, Note: "n/a: flowd answers 404"})
			say("  %s: n/a (404)", q.name)
			continue
		}
		if err != nil {
			return err
		}
		res.API = append(res.API, apiRow{Name: q.name, Path: q.path, Latency: h, Note: q.note})
		say("  %s: p50 %s, max %s", q.name, ms(h.Quantile(0.5)), ms(h.Max()))
	}
	if err := p.stop(); err != nil {
		return err
	}
	if _, res.Seeded, err = dbStats(ctx, db); err != nil {
		return err
	}
	return nil
}

// checkTokenAnswer checks that the token flow's answer is what a valid token gives.
func checkTokenAnswer(body []byte) error {
	var a struct{ AccessToken, ExpiresAt, RefreshAt string }
	if err := json.Unmarshal(body, &a); err != nil || a.AccessToken == "" || a.RefreshAt == "" {
		return fmt.Errorf("the token flow answered %q, want {accessToken, expiresAt, refreshAt}", body)
	}
	return nil
}

// checkFlowCount checks that flowd has loaded n flows.
func checkFlowCount(ctx context.Context, p *flowdProc, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL("/api/flows"), nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("list flows: %w", err)
	}
	defer res.Body.Close()
	var out struct{ Flows []json.RawMessage }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return fmt.Errorf("list flows: %w", err)
	}
	if len(out.Flows) != n {
		return fmt.Errorf("flowd loaded %d flows, want %d\n%s", len(out.Flows), n, p.logTail())
	}
	return nil
}

// checkRunsPage checks a GET /api/runs answer: runs when full is set, and with a cursor only
// runs older than it.
func checkRunsPage(body []byte, cursor string, paged, full bool) error {
	var page struct{ Runs []struct{ ID string } }
	if err := json.Unmarshal(body, &page); err != nil {
		return fmt.Errorf("decode runs page: %w", err)
	}
	if full && len(page.Runs) == 0 {
		return fmt.Errorf("no runs listed: were the seeded runs pruned?")
	}
	for _, r := range page.Runs {
		if paged && r.ID >= cursor {
			return fmt.Errorf("run %s listed before cursor %s", r.ID, cursor)
		}
	}
	return nil
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
