package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// machine is what the figures were measured on.
type machine struct {
	Cores       int
	CPU, OS, Go string
	MemTotalKB  int64
	// BusyBefore is the cores the machine was using in the second before the run started:
	// other work that will disturb the figures.
	BusyBefore float64
}

func thisMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown CPU", OS: runtime.GOOS}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS = "Linux " + strings.TrimSpace(string(b))
	}
	if before, err := systemBusy(); err == nil {
		time.Sleep(time.Second) // sampling the machine's load, not waiting for anything
		if after, err := systemBusy(); err == nil {
			m.BusyBefore = float64(after-before) / float64(time.Second)
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				fmt.Sscanf(strings.TrimSpace(rest), "%d", &m.MemTotalKB)
			}
		}
	}
	return m
}

// flowdVersion is the binary's path and what `flowd version` says.
func flowdVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return bin + " (version unknown: " + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

// Targets of issue 5.
const (
	targetThroughput   = 0.35 // flowd/bare runs/s at c=64
	targetP99Ratio     = 3.0  // flowd/bare p99 at c=8
	targetRSSIdle      = 25 << 20
	targetRSSAfterN    = 80 << 20
	targetStart        = 150 * time.Millisecond
	targetBytesPerRun  = 2 << 10
	targetAPI          = 20 * time.Millisecond
	targetScaleFlowsLo = 0.90 // many flows' runs/s over one flow's
)

// report renders the results as Markdown: aligned tables that read as well in a terminal.
func report(r *results, command string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	c := r.Cfg
	w("# flowd-bench results\n\n")
	w("- command: `%s`\n", command)
	w("- machine: %d cores (nproc), %s, %.1f GiB RAM, %s, %s\n", r.Machine.Cores, r.Machine.CPU, float64(r.Machine.MemTotalKB)/(1<<20), r.Machine.OS, r.Machine.Go)
	w("- machine load in the second before the run: %.2f cores busy", r.Machine.BusyBefore)
	if r.Machine.BusyBefore > 0.2 {
		w(" — **other work is running: the figures will be disturbed**")
	}
	w("\n- flowd: %s\n", r.Flowd)
	w("- load: `POST /webhook/token-refresh` with an empty body over keep-alive connections, one per worker; %s warm-up, then %s measured per row, in %d slices alternating with the rows it is compared with; latency is the client's, request sent to answer read; an answer that is not 200 with the expected body is an error\n", c.Warmup, c.Duration, c.Rounds)
	w("- the load generator is this tool's process; flowd and the bare handler each run in a process of their own on the same cores (the bare one is this tool re-executed); the in-process bare reference shares the load generator's process\n")

	if len(r.Load) > 0 {
		w("\n## Token flow against a bare net/http handler\n\n")
		w("flowd runs the shipped token flow with a valid token (steady state: no token request), recording every run with its nodes' inputs and outputs. The bare handler answers the same JSON.\n\n")
		inProc := findTarget(r.Load, targetBareInProc)
		head := []string{"target", "c", "runs/s", "p50", "p99", "max", "errors", "flowd/bare runs/s"}
		if inProc {
			head = append(head, "flowd/in-process bare")
		}
		head = append(head, "cores: server / tool / rest")
		rows := [][]string{}
		for _, l := range r.Load {
			var ratios []string
			for _, floor := range []string{targetBare, targetBareInProc} {
				if floor == targetBareInProc && !inProc {
					continue
				}
				ratio := ""
				if bare := findLoad(r.Load, floor, l.Conc); l.Target == targetFlowd && bare != nil && bare.Result.RunsPerSec() > 0 {
					ratio = pct(l.Result.RunsPerSec() / bare.Result.RunsPerSec())
				}
				ratios = append(ratios, ratio)
			}
			server := fmt.Sprintf("%.2f", l.ServerCPU)
			if l.Target == targetBareInProc {
				server = "—"
			}
			rows = append(rows, append(loadCells(l, ratios...), fmt.Sprintf("%s / %.2f / %.2f", server, l.ToolCPU, l.OtherCPU)))
		}
		w("%s\n", table(head, rows))
		w("Cores are CPU time over the measured period, of %d: the server's process (flowd's, or the bare handler's own; — for the in-process bare handler, which runs in the tool); this tool's (the load generator, and the in-process bare handler); the rest of the machine (other processes, and kernel work no process is charged for, such as loopback networking).\n\n", r.Machine.Cores)
		if inProc {
			w("The targets judge flowd against the bare handler in a process of its own, as flowd runs. In-process, the handler and the load generator share one Go runtime, so an answer wakes its client without a cross-process thread wake-up: a floor no server in a process of its own can reach. The cores column shows what each pair used.\n\n")
		}
		if busy := busiest(r.Load); busy != nil && busy.OtherCPU > 0.5 {
			w("**Warning:** the rest of the machine used %.2f cores during %s c=%d: the figures are disturbed by other work. Re-run on a quiet machine.\n\n", busy.OtherCPU, busy.Target, busy.Conc)
		}
		if f, bare := findLoad(r.Load, targetFlowd, 8), findLoad(r.Load, targetBare, 8); f != nil && bare != nil {
			w("p99 at c=8: flowd %s, bare %s: %.1f×", ms(f.Result.Latency.Quantile(0.99)), ms(bare.Result.Latency.Quantile(0.99)), p99Ratio(r, targetBare))
			if in := findLoad(r.Load, targetBareInProc, 8); in != nil {
				w(" (bare in-process %s: %.1f×)", ms(in.Result.Latency.Quantile(0.99)), p99Ratio(r, targetBareInProc))
			}
			w("\n\n")
		}
		var batching []string
		for _, l := range r.Load {
			if l.WritesPerCommit > 0 {
				batching = append(batching, fmt.Sprintf("c=%d %.1f", l.Conc, l.WritesPerCommit))
			}
		}
		if len(batching) > 0 {
			w("Run writes per group commit of flowd's store (a run is two: its start and its end): %s.\n\n", strings.Join(batching, ", "))
		}
		w("Token endpoint calls during the load: %d (0 means steady state held).\n", r.TokenCalls)
		if errs := firstErrors(r.Load); errs != "" {
			w("\nFirst errors: %s\n", errs)
		}
	}

	if r.RSSIdle > 0 || r.DBRuns > 0 || r.StartBig > 0 {
		w("\n## Resources and start-up\n\n")
		rows := [][]string{}
		if r.RSSIdle > 0 {
			rows = append(rows, []string{"RSS idle (VmRSS after start and the first run)", mib(r.RSSIdle)})
		}
		if r.RSSAfterLoad > 0 {
			rows = append(rows, []string{"RSS at the end of the load", mib(r.RSSAfterLoad)})
		}
		if r.RSSAfterN > 0 {
			rows = append(rows, []string{fmt.Sprintf("RSS after %s runs", thousands(r.RSSRunsServed)), mib(r.RSSAfterN)})
		}
		if r.RSSLoad != nil {
			rows = append(rows, []string{"runs/s while driving them (c=64)", fmt.Sprintf("%.0f, %d errors", r.RSSLoad.RunsPerSec(), r.RSSLoad.Errors)})
		}
		if r.DBRuns > 0 {
			rows = append(rows, []string{"database bytes per recorded run", fmt.Sprintf("%s B (%s runs in %s, file + WAL after SIGTERM)", thousands(r.DBBytes/r.DBRuns), thousands(r.DBRuns), mib(r.DBBytes))})
		}
		if r.StartNewDB > 0 {
			rows = append(rows, []string{"start → first served webhook, new database", ms(r.StartNewDB)})
		}
		if r.StartBig > 0 {
			rows = append(rows, []string{fmt.Sprintf("start → first served webhook, %s flows and %s runs", thousands(int64(c.Flows)), thousands(int64(c.DBRuns))), ms(r.StartBig)})
		}
		w("%s", table([]string{"figure", "value"}, rows))
	}

	if len(r.Scale) == 2 {
		w("\n## Scale: 1 flow against %s flows loaded\n\n", thousands(int64(c.Flows)))
		w("Two flowd processes, each on a new database, measured in alternating slices; the other flows are small webhook flows with their own paths (half with a path parameter).\n\n")
		rows := [][]string{}
		for _, l := range r.Scale {
			rows = append(rows, loadCells(l))
		}
		w("%s\n", table([]string{"flows", "c", "runs/s", "p50", "p99", "max", "errors"}, rows))
		w("%s flows / 1 flow runs/s: %s\n", thousands(int64(c.Flows)), pct(scaleRatio(r)))
	}

	if len(r.API) > 0 {
		w("\n## Runs API and page with %s runs stored\n\n", thousands(r.Seeded))
		w("Runs inserted straight into SQLite in %s; each request timed %d times after 2 unmeasured ones, over keep-alive.\n\n", r.SeedTime.Round(time.Millisecond), c.APIReps)
		rows := [][]string{}
		for _, a := range r.API {
			if a.Latency == nil {
				rows = append(rows, []string{a.Name, "`" + a.Path + "`", "n/a", "n/a", a.Note})
				continue
			}
			rows = append(rows, []string{a.Name, "`" + shortPath(a.Path) + "`", ms(a.Latency.Quantile(0.5)), ms(a.Latency.Max()), a.Note})
		}
		w("%s", table([]string{"request", "path", "p50", "max", "note"}, rows))
	}

	w("\n## Targets of issue 5\n\n")
	w("%s", table([]string{"target", "measured", "verdict"}, targets(r)))
	if r.Profile != "" {
		w("\nCPU profile of flowd during the c=%d load: `%s` (read it with `go tool pprof -top %s`).\n", maxConc(c), r.Profile, r.Profile)
	}
	return b.String()
}

// targets checks the results against issue 5; a target not measured says so.
func targets(r *results) [][]string {
	var rows [][]string
	add := func(name string, measured bool, value string, met bool) {
		verdict := "not measured"
		if measured {
			verdict = map[bool]string{true: "met", false: "**not met**"}[met]
		} else {
			value = "—"
		}
		rows = append(rows, []string{name, value, verdict})
	}
	f, bare := findLoad(r.Load, targetFlowd, 64), findLoad(r.Load, targetBare, 64)
	ok := f != nil && bare != nil && bare.Result.RunsPerSec() > 0
	var tp float64
	if ok {
		tp = f.Result.RunsPerSec() / bare.Result.RunsPerSec()
	}
	add("throughput at c=64 ≥ 35% of bare", ok, pct(tp), tp >= targetThroughput)
	p99 := p99Ratio(r, targetBare)
	add("p99 at c=8 ≤ 3× bare", p99 > 0, fmt.Sprintf("%.1f×", p99), p99 <= targetP99Ratio)
	add("RSS idle ≤ 25 MiB", r.RSSIdle > 0, mib(r.RSSIdle), r.RSSIdle <= targetRSSIdle)
	add("RSS after 100,000 runs ≤ 80 MiB", r.RSSAfterN > 0 && r.RSSRunsServed >= 100_000,
		fmt.Sprintf("%s after %s runs", mib(r.RSSAfterN), thousands(r.RSSRunsServed)), r.RSSAfterN <= targetRSSAfterN)
	add("start → first webhook ≤ 150 ms", r.StartNewDB > 0, ms(r.StartNewDB), r.StartNewDB <= targetStart)
	var perRun int64
	if r.DBRuns > 0 {
		perRun = r.DBBytes / r.DBRuns
	}
	add("≤ 2 KiB of database per run", r.DBRuns > 0, thousands(perRun)+" B", perRun <= targetBytesPerRun)
	var worst time.Duration
	var worstName string
	measured := 0
	for _, a := range r.API {
		if a.Latency != nil {
			measured++
			if p := a.Latency.Quantile(0.5); p > worst {
				worst, worstName = p, a.Name
			}
		}
	}
	big := r.Seeded >= 1_000_000
	add("runs API and page ≤ 20 ms with 1M runs (slowest p50)", measured > 0 && big, ms(worst)+" ("+worstName+")", worst <= targetAPI)
	if page := findAPI(r.API, "UI runs page"); page != nil && page.Latency == nil {
		rows = append(rows, []string{"runs page (UI) ≤ 20 ms with 1M runs", "n/a: no /runs page yet", "not measured"})
	}
	sr := scaleRatio(r)
	add(fmt.Sprintf("%s flows within 10%% of 1 flow", thousands(int64(r.Cfg.Flows))), sr > 0 && r.Cfg.Flows >= 1000, pct(sr), sr >= targetScaleFlowsLo)
	return rows
}

// loadCells is a load row's cells: target, concurrency, runs/s, latencies and errors, then
// more.
func loadCells(l loadRow, more ...string) []string {
	res := l.Result
	cells := []string{l.Target, fmt.Sprint(l.Conc), thousands(int64(res.RunsPerSec() + 0.5)),
		ms(res.Latency.Quantile(0.5)), ms(res.Latency.Quantile(0.99)), ms(res.Latency.Max()), fmt.Sprint(res.Errors)}
	return append(cells, more...)
}

// busiest is the row during which the rest of the machine used the most CPU.
func busiest(rows []loadRow) *loadRow {
	var b *loadRow
	for i := range rows {
		if b == nil || rows[i].OtherCPU > b.OtherCPU {
			b = &rows[i]
		}
	}
	return b
}

func findLoad(rows []loadRow, target string, c int) *loadRow {
	for i := range rows {
		if rows[i].Target == target && rows[i].Conc == c {
			return &rows[i]
		}
	}
	return nil
}

// findTarget says whether rows measured target.
func findTarget(rows []loadRow, target string) bool {
	return slices.ContainsFunc(rows, func(l loadRow) bool { return l.Target == target })
}

func findAPI(rows []apiRow, name string) *apiRow {
	for i := range rows {
		if rows[i].Name == name {
			return &rows[i]
		}
	}
	return nil
}

// p99Ratio is flowd's p99 at c=8 over that of floor, a bare target; 0 if either is missing.
func p99Ratio(r *results, floor string) float64 {
	f, bare := findLoad(r.Load, targetFlowd, 8), findLoad(r.Load, floor, 8)
	if f == nil || bare == nil || bare.Result.Latency.Quantile(0.99) == 0 {
		return 0
	}
	return float64(f.Result.Latency.Quantile(0.99)) / float64(bare.Result.Latency.Quantile(0.99))
}

func scaleRatio(r *results) float64 {
	if len(r.Scale) != 2 || r.Scale[0].Result.RunsPerSec() == 0 {
		return 0
	}
	return r.Scale[1].Result.RunsPerSec() / r.Scale[0].Result.RunsPerSec()
}

func maxConc(c config) int {
	top := 0
	for _, n := range c.Conc {
		top = max(top, n)
	}
	return top
}

func firstErrors(rows []loadRow) string {
	var out []string
	for _, l := range rows {
		if l.Result.FirstError != "" {
			out = append(out, fmt.Sprintf("%s c=%d: %s", l.Target, l.Conc, l.Result.FirstError))
		}
	}
	return strings.Join(out, "; ")
}

// shortPath shortens the long cursor in a path for the table.
func shortPath(p string) string {
	if i := strings.Index(p, "before="); i >= 0 && len(p) > i+7+8 {
		return p[:i+7+8] + "…"
	}
	return p
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// table renders a Markdown table with padded columns.
func table(head []string, rows [][]string) string {
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i := range min(len(r), len(width)) {
			width[i] = max(width[i], utf8.RuneCountInString(r[i]))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i := range width {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			fmt.Fprintf(&b, " %s%s |", cell, strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell)))
		}
		b.WriteString("\n")
	}
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}
