// Command flowd-bench measures flowd end to end on this machine, all on 127.0.0.1: it builds
// flowd, starts it with the token flow against a local token endpoint, and drives it and a
// bare net/http handler that answers the same JSON with the same load generator. The bare
// handler runs in a process of its own, as flowd does (the tool re-executes itself for it),
// and, as a reference, inside the tool's process. It also measures memory, start-up time and
// database bytes per run, throughput with many flows loaded, and the runs API with a million
// runs stored. It prints a Markdown report, and checks the figures against issue 5's targets.
//
// It is a development tool, not part of the flowd binary: `make bench` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if os.Getenv(bareEnv) == "1" { // re-executed by startBareProc
		code = serveBare(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	} else {
		code = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

const usage = `Usage: flowd-bench [flags]

Runs flowd's end-to-end benchmark on 127.0.0.1 and prints a Markdown report (progress goes to
stderr). Sections:
  load   flowd with the token flow vs a bare net/http handler answering the same JSON, at
         each concurrency, in alternating slices: the bare handler in a process of its own
         (the floor the targets are judged against, this tool re-executed) and, unless
         -bare-inproc=false, inside this tool's process (a reference that shares the load
         generator's runtime and so needs no cross-process wake-ups); start time, RSS idle
         and after the load
  rss    RSS after -rss-runs runs in all; database bytes per recorded run
  scale  the same load with 1 flow and with -flows flows loaded
  runs   -db-runs runs inserted into SQLite, then the runs API and page timed
The full run takes about 2½ minutes on 2 cores; -quick takes about 25 seconds.

Flags:
`

// run is the whole program: it parses args, benchmarks and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flowd-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var (
		cfg      config
		conc     = "1,8,64"
		sections = strings.Join(allSections, ",")
		quick    bool
		out      string
	)
	fs.StringVar(&cfg.Repo, "repo", "", "flowd repository `dir` (default: found from the working directory)")
	fs.StringVar(&cfg.Flowd, "flowd", "", "flowd `binary` to measure (default: build one from -repo)")
	fs.StringVar(&cfg.Flow, "flow", "", "token flow `file` (default: flows/token-refresh.json in -repo)")
	fs.DurationVar(&cfg.Duration, "duration", 8*time.Second, "measured time per load")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up before each load, not counted")
	fs.StringVar(&conc, "c", conc, "`concurrencies` of the load section, comma-separated")
	fs.StringVar(&sections, "sections", sections, "`list` of sections to run, comma-separated: "+strings.Join(allSections, ", "))
	fs.BoolVar(&cfg.BareInProc, "bare-inproc", true, "also measure the bare handler inside this process, as a reference row")
	fs.IntVar(&cfg.RSSRuns, "rss-runs", 100_000, "runs in all before the RSS-after-runs figure")
	fs.IntVar(&cfg.Flows, "flows", 1000, "flows loaded in the scale and runs sections (the token flow among them)")
	fs.IntVar(&cfg.ScaleConc, "scale-c", 64, "concurrency of the scale section")
	fs.IntVar(&cfg.Rounds, "rounds", 4, "slices each measurement is cut into, alternating between the targets compared, so that other work on the machine falls on both alike")
	fs.IntVar(&cfg.DBRuns, "db-runs", 1_000_000, "runs stored for the runs section")
	fs.IntVar(&cfg.APIReps, "api-reps", 20, "timed requests per runs API query")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of flowd under the highest concurrency to `file` (flowd --pprof-addr)")
	fs.StringVar(&out, "out", "", "also write the report to `file`")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temp dir (flows, databases, flowd logs)")
	fs.BoolVar(&quick, "quick", false, "smoke run: -duration 1s -warmup 300ms -rss-runs 5000 -db-runs 50000, unless set")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"duration": "1s", "warmup": "300ms", "rss-runs": "5000", "db-runs": "50000"} {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	if err := finishConfig(&cfg, conc, sections); err != nil {
		fmt.Fprintln(stderr, "flowd-bench:", err)
		return 2
	}

	res, err := bench(ctx, cfg, stderr)
	if ctx.Err() != nil { // interrupted: whatever failed, failed because of it
		fmt.Fprintln(stderr, "flowd-bench: interrupted; flowd and the bare handler stopped, temp files removed")
		return 130
	}
	if err != nil {
		fmt.Fprintln(stderr, "flowd-bench:", err)
		return 1
	}
	text := report(res, strings.Join(append([]string{"flowd-bench"}, args...), " "))
	fmt.Fprint(stdout, text)
	if out != "" {
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			fmt.Fprintln(stderr, "flowd-bench:", err)
			return 1
		}
		fmt.Fprintln(stderr, "flowd-bench: report written to", out)
	}
	return 0
}

// finishConfig checks the flags and fills in what they leave to defaults.
func finishConfig(cfg *config, conc, sections string) error {
	for s := range strings.SplitSeq(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			return fmt.Errorf("-c %q: want concurrencies from 1 to 4096, comma-separated", conc)
		}
		cfg.Conc = append(cfg.Conc, n)
	}
	for s := range strings.SplitSeq(sections, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSections, s) {
			return fmt.Errorf("-sections: unknown section %q; the sections are %s", s, strings.Join(allSections, ", "))
		}
		cfg.Sections = append(cfg.Sections, s)
	}
	switch {
	case cfg.Duration <= 0 || cfg.Warmup < 0:
		return fmt.Errorf("-duration must be positive and -warmup not negative")
	case cfg.Flows < 1:
		return fmt.Errorf("-flows must be at least 1")
	case cfg.ScaleConc < 1:
		return fmt.Errorf("-scale-c must be at least 1")
	case cfg.Rounds < 1 || cfg.Duration/time.Duration(max(cfg.Rounds, 1)) < 10*time.Millisecond:
		return fmt.Errorf("-rounds must be at least 1, with slices of -duration/-rounds at least 10ms")
	case cfg.DBRuns < 10:
		return fmt.Errorf("-db-runs must be at least 10")
	case cfg.APIReps < 1:
		return fmt.Errorf("-api-reps must be at least 1")
	case cfg.RSSRuns < 0:
		return fmt.Errorf("-rss-runs must not be negative")
	}
	if cfg.CPUProfile != "" && !cfg.has("load") {
		return fmt.Errorf("-cpuprofile needs the load section")
	}
	if cfg.Repo == "" && (cfg.Flowd == "" || cfg.Flow == "") {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if cfg.Repo, err = findRepo(wd); err != nil {
			return err
		}
	}
	if cfg.Flow == "" {
		cfg.Flow = filepath.Join(cfg.Repo, "flows", "token-refresh.json")
	}
	if cfg.CPUProfile != "" {
		abs, err := filepath.Abs(cfg.CPUProfile)
		if err != nil {
			return err
		}
		cfg.CPUProfile = abs
	}
	return nil
}
