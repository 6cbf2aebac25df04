package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the bare handler's process as well: startBareProc
// re-executes os.Executable(), which under go test is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(bareEnv) == "1" {
		main()
	}
	// Under -race a process sleeps a second before it exits (atexit_sleep_ms), to catch late
	// reports; the bare processes the tests start need not, which keeps the package fast.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// TestSmallRun runs every section at a tiny size against a freshly built flowd and checks
// what it reports about behaviour, never timing: every request answered as expected, every
// run recorded, the token fetched once, the API answering over the seeded runs.
func TestSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts flowd")
	}
	cfg := config{Duration: 100 * time.Millisecond, Warmup: 20 * time.Millisecond, RSSRuns: 300,
		Flows: 10, ScaleConc: 4, DBRuns: 500, APIReps: 3, Rounds: 2, BareInProc: true}
	if err := finishConfig(&cfg, "1,4", strings.Join(allSections, ",")); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("progress:\n%s", progress.String())
		}
	})
	res, err := bench(ctx, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}

	if len(res.Load) != 6 || len(res.Scale) != 2 {
		t.Fatalf("%d load rows and %d scale rows, want 6 (3 targets at 2 concurrencies) and 2", len(res.Load), len(res.Scale))
	}
	for i, want := range []string{targetBare, targetBareInProc, targetFlowd} {
		if got := res.Load[i].Target; got != want {
			t.Errorf("load row %d is %q, want %q", i, got, want)
		}
	}
	var flowdServed int64
	for _, l := range append(res.Load, res.Scale...) {
		if l.Result.OK == 0 || l.Result.Errors != 0 || l.Result.Latency.Count() != uint64(l.Result.OK) {
			t.Errorf("%s c=%d: %d ok, %d errors (%s), %d latencies", l.Target, l.Conc, l.Result.OK, l.Result.Errors, l.Result.FirstError, l.Result.Latency.Count())
		}
		if l.Target == targetFlowd {
			flowdServed += l.Total
		}
	}
	if res.TokenCalls != 0 {
		t.Errorf("%d token endpoint calls during the load, want 0 (steady state)", res.TokenCalls)
	}
	if res.RSSRunsServed < int64(cfg.RSSRuns) || res.RSSRunsServed < flowdServed {
		t.Errorf("RSS figure after %d runs, want at least %d and the %d served under load", res.RSSRunsServed, cfg.RSSRuns, flowdServed)
	}
	// Every run served is recorded (a schedule tick may add one).
	if res.DBRuns < res.RSSRunsServed || res.DBRuns > res.RSSRunsServed+2 || res.DBBytes <= 0 {
		t.Errorf("%d runs in %d bytes recorded, %d served", res.DBRuns, res.DBBytes, res.RSSRunsServed)
	}
	if res.RSSIdle <= 0 || res.RSSAfterLoad <= 0 || res.RSSAfterN <= 0 || res.StartNewDB <= 0 || res.StartBig <= 0 {
		t.Errorf("missing figures: %+v", res)
	}
	if res.Seeded < int64(cfg.DBRuns) || len(res.API) != 6 {
		t.Fatalf("%d runs stored, %d API rows", res.Seeded, len(res.API))
	}
	for _, a := range res.API {
		if a.Latency == nil && a.Name != "UI runs page" {
			t.Errorf("%s: not served", a.Name)
		} else if a.Latency != nil && a.Latency.Count() != uint64(cfg.APIReps) {
			t.Errorf("%s: %d timings, want %d", a.Name, a.Latency.Count(), cfg.APIReps)
		}
	}

	text := report(res, "flowd-bench -test")
	for _, want := range []string{"## Token flow against a bare net/http handler", "## Resources and start-up",
		"## Scale: 1 flow against 10 flows loaded", "## Runs API and page", "## Targets of issue 5"} {
		if !strings.Contains(text, want) {
			t.Errorf("report has no %q:\n%s", want, text)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "1,x"}, "want concurrencies"},
		{[]string{"-c", "0"}, "want concurrencies"},
		{[]string{"-sections", "load,nope"}, `unknown section "nope"`},
		{[]string{"-duration", "0s"}, "-duration must be positive"},
		{[]string{"-rounds", "0"}, "-rounds must be at least 1"},
		{[]string{"-sections", "runs", "-cpuprofile", "x.pprof"}, "-cpuprofile needs the load section"},
		{[]string{"extra"}, "Usage: flowd-bench"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q, want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	lat := func(d time.Duration) histogram {
		var h histogram
		h.Record(d)
		return h
	}
	row := func(target string, c int, ok int64, p99 time.Duration) loadRow {
		return loadRow{Target: target, Conc: c, Result: &loadResult{OK: ok, Elapsed: time.Second, Latency: lat(p99)}}
	}
	r := &results{
		Cfg: config{Conc: []int{8, 64}, Flows: 1000},
		// The in-process bare rows are faster: judged against them, both verdicts would flip.
		Load: []loadRow{
			row(targetBare, 8, 1000, time.Millisecond), row(targetBareInProc, 8, 2000, time.Millisecond/2), row(targetFlowd, 8, 500, 5*time.Millisecond/2),
			row(targetBare, 64, 1000, time.Millisecond), row(targetBareInProc, 64, 2000, time.Millisecond/2), row(targetFlowd, 64, 400, time.Millisecond),
		},
		RSSIdle: 30 << 20, DBBytes: 1000 * 1024, DBRuns: 1000,
		Scale: []loadRow{row("1 flow", 64, 1000, time.Millisecond), row("1,000 flows", 64, 950, time.Millisecond)},
	}
	got := map[string]string{}
	for _, row := range targets(r) {
		got[row[0]] = row[2]
	}
	for name, want := range map[string]string{
		"throughput at c=64 ≥ 35% of bare": "met",         // 40% (20% of in-process)
		"p99 at c=8 ≤ 3× bare":             "met",         // 2.5× (5× of in-process)
		"RSS idle ≤ 25 MiB":                "**not met**", // 30 MiB
		"RSS after 100,000 runs ≤ 80 MiB":  "not measured",
		"≤ 2 KiB of database per run":      "met", // 1 KiB
		"1,000 flows within 10% of 1 flow": "met", // 95%
		"start → first webhook ≤ 150 ms":   "not measured",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}

	// The report's load table gives flowd's ratio against both bare handlers, and no server
	// CPU for the in-process one.
	text := report(r, "flowd-bench -test")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\| flowd +\| 64 +\| 400 .*\| 40% +\| 20% +\| 0\.00 / `),
		regexp.MustCompile(`(?m)^\| bare, in-process +\| 64 +\| 2,000 .*\| +\| +\| — / `),
		regexp.MustCompile(`(?m)^p99 at c=8: flowd 2\.50 ms, bare 1\.00 ms: 2\.5× \(bare in-process 0\.50 ms: 5\.0×\)$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("report does not match %s:\n%s", want, text)
		}
	}
	// Without the in-process rows, the table has no column for them.
	r.Load = slices.DeleteFunc(r.Load, func(l loadRow) bool { return l.Target == targetBareInProc })
	if text := report(r, "flowd-bench -test"); strings.Contains(text, "in-process bare |") || !strings.Contains(text, "| 40% ") {
		t.Errorf("report without in-process rows:\n%s", text)
	}
}
