package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildFlowd builds the flowd binary of the repository at repo into dir and returns its path.
// Its version is the commit, as `make build` sets it, so the report says what was measured.
func buildFlowd(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "flowd")
	version := "dev"
	describe := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty")
	describe.Dir = repo
	if out, err := describe.Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", "-X main.version="+version, "-o", bin, "./cmd/flowd")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build flowd in %s: %w\n%s", repo, err, out)
	}
	return bin, nil
}

// findRepo walks up from dir to the folder whose go.mod declares flowd's module.
func findRepo(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/flowd/flowd\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no flowd repository (go.mod of github.com/flowd/flowd) at or above %s; run from the repository or pass -repo", dir)
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago. flowd is
// started on it rather than on port 0 so that the start can be timed from outside by polling.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// child is a process this tool started. Whoever starts one must end or kill it.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited; then err is set
	err  error
}

// start starts cmd and waits for it in the background; after, when set, runs once it has
// exited, before done is closed.
func (c *child) start(cmd *exec.Cmd, after func()) error {
	c.cmd, c.done = cmd, make(chan struct{})
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		c.err = cmd.Wait()
		if after != nil {
			after()
		}
		close(c.done)
	}()
	return nil
}

// Pid is the process's id.
func (c *child) Pid() int { return c.cmd.Process.Pid }

// end asks the process to exit, with ask, and waits up to grace for it, then kills it. It
// returns an error unless the process exited with status 0 within grace.
func (c *child) end(ask func() error, grace time.Duration) error {
	select {
	case <-c.done:
		return fmt.Errorf("it had already exited: %v", c.err)
	default:
	}
	if err := ask(); err != nil {
		c.kill()
		return err
	}
	select {
	case <-c.done:
	case <-time.After(grace):
		c.kill()
		return fmt.Errorf("it did not exit within %s", grace)
	}
	if c.err != nil {
		return fmt.Errorf("it exited uncleanly: %w", c.err)
	}
	return nil
}

// kill ends the process at once if it still runs, and waits for it.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// flowdProc is a `flowd serve` process.
type flowdProc struct {
	child
	Addr      string // where it serves webhooks and the API
	PprofAddr string // "" when pprof is off
	logPath   string
	started   time.Time
}

// flowdOpts says how to start flowd serve.
type flowdOpts struct {
	Bin, FlowsDir, DB, LogPath string
	Env                        []string // added to this process's environment
	Pprof                      bool
}

// startFlowd starts flowd serve on a free loopback port, logging to o.LogPath. It does not
// wait for it to listen: see waitWebhook. The caller must stop or kill the process.
func startFlowd(o flowdOpts) (*flowdProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--addr", addr, "--db", o.DB, "--flows", o.FlowsDir}
	p := &flowdProc{Addr: addr, logPath: o.LogPath}
	if o.Pprof {
		if p.PprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--pprof-addr", p.PprofAddr)
	}
	logf, err := os.Create(o.LogPath)
	if err != nil {
		return nil, fmt.Errorf("flowd log: %w", err)
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Env = append(cleanEnv(), o.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p.started = time.Now()
	if err := p.start(cmd, func() { logf.Close() }); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", o.Bin, err)
	}
	return p, nil
}

// cleanEnv is this process's environment without FLOWD_* settings: those of the caller's
// shell would change what is measured.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "FLOWD_") })
}

// URL is the address of path on this flowd.
func (p *flowdProc) URL(path string) string { return "http://" + p.Addr + path }

// waitWebhook polls POST path until flowd answers it with 200 and returns that answer's body
// and the time from the process's start to it: flowd's start to its first served webhook.
func (p *flowdProc) waitWebhook(ctx context.Context, path string) ([]byte, time.Duration, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL(path), nil)
		if err != nil {
			return nil, 0, err
		}
		res, err := client.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(res.Body)
			res.Body.Close()
			took := time.Since(p.started)
			if res.StatusCode == http.StatusOK && rerr == nil {
				return body, took, nil
			}
			return nil, 0, fmt.Errorf("first webhook POST %s: status %d: %s\n%s", path, res.StatusCode, body, p.logTail())
		}
		select {
		case <-p.done:
			return nil, 0, fmt.Errorf("flowd exited before serving: %v\n%s", p.err, p.logTail())
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(200 * time.Microsecond): // polling: the port is not open yet
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("flowd did not serve POST %s within 30s: %v\n%s", path, err, p.logTail())
		}
	}
}

// RSS is the process's resident set size (VmRSS) in bytes.
func (p *flowdProc) RSS() (int64, error) { return readRSS(p.Pid()) }

func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read RSS: %q: %w", sc.Text(), err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	return 0, fmt.Errorf("read RSS: no VmRSS in /proc/%d/status", pid)
}

// stop sends SIGTERM and waits for a clean exit: exit status 0 within a minute.
func (p *flowdProc) stop() error {
	if err := p.end(func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }, time.Minute); err != nil {
		return fmt.Errorf("stop flowd (SIGTERM): %w\n%s", err, p.logTail())
	}
	return nil
}

// logTail is the end of flowd's log, for error messages.
func (p *flowdProc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no flowd log: " + err.Error() + ")"
	}
	const keep = 3000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return "flowd log (" + p.logPath + ", end):\n" + string(b)
}

// cpuProfile fetches a CPU profile of seconds from flowd's pprof listener into path.
func (p *flowdProc) cpuProfile(ctx context.Context, seconds int, path string) error {
	if p.PprofAddr == "" {
		return errors.New("cpu profile: flowd runs without --pprof-addr")
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.PprofAddr, seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1000))
		return fmt.Errorf("cpu profile: status %d: %s", res.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	return f.Close()
}

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on every
// mainstream architecture.
const clockTick = 10 * time.Millisecond

// cpuTime is the CPU time (user and system) process pid has used so far; pid 0 is this one.
func cpuTime(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces: count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("read CPU time: %s: no ')'", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("read CPU time: %s: %d fields", path, len(f))
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read CPU time: %s: %w", path, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// systemBusy is the CPU time all cores have spent on anything but idling (and waiting for
// I/O) since boot, from /proc/stat.
func systemBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read system CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("read system CPU time: /proc/stat starts %q", line)
	}
	var busy int64
	for i, s := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read system CPU time: %w", err)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * clockTick, nil
}

// cpuUse is the CPU time processes, and the rest of the machine, used over wall time.
type cpuUse struct {
	Procs       []time.Duration
	Other, Wall time.Duration
}

// Cores is the average cores process i used (-1: the rest of the machine).
func (u cpuUse) Cores(i int) float64 {
	if u.Wall <= 0 {
		return 0
	}
	t := u.Other
	if i >= 0 {
		if i >= len(u.Procs) {
			return 0
		}
		t = u.Procs[i]
	}
	return float64(t) / float64(u.Wall)
}

func (u *cpuUse) add(o cpuUse) {
	for len(u.Procs) < len(o.Procs) {
		u.Procs = append(u.Procs, 0)
	}
	for i, t := range o.Procs {
		u.Procs[i] += t
	}
	u.Other += o.Other
	u.Wall += o.Wall
}

// cpuMeter measures the CPU time processes, and the whole machine, use over a period.
type cpuMeter struct {
	pids      []int // 0 is this process
	start     []time.Duration
	startBusy time.Duration
	at        time.Time
}

func startCPUMeter(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids, at: time.Now()}
	for _, p := range pids {
		t, _ := cpuTime(p) // a process that is gone reads as 0
		m.start = append(m.start, t)
	}
	m.startBusy, _ = systemBusy()
	return m
}

// Stop returns what each process used since the meter started, and what everything else
// used: other processes, and the kernel's own work (loopback networking, disk writeback)
// that no process is charged for.
func (m *cpuMeter) Stop() cpuUse {
	u := cpuUse{Procs: make([]time.Duration, len(m.pids)), Wall: time.Since(m.at)}
	var sum time.Duration
	for i, p := range m.pids {
		if t, err := cpuTime(p); err == nil {
			u.Procs[i] = t - m.start[i]
			sum += u.Procs[i]
		}
	}
	if busy, err := systemBusy(); err == nil && m.startBusy > 0 {
		u.Other = max(0, busy-m.startBusy-sum)
	}
	return u
}

// mergeProfiles merges the CPU profiles at parts into one at path, with go tool pprof, and
// removes the parts.
func mergeProfiles(ctx context.Context, path string, parts []string) error {
	out, err := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof", "-proto"}, parts...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return fmt.Errorf("merge cpu profiles %s: %w", strings.Join(parts, " "), err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("merge cpu profiles: %w", err)
	}
	for _, p := range parts {
		os.Remove(p)
	}
	return nil
}

// storeCounts are flowd's store counters from its /metrics.
type storeCounts struct{ commits, writes float64 }

// storeWrites reads flowd_store_commits_total and flowd_store_run_writes_total from /metrics.
func (p *flowdProc) storeWrites(ctx context.Context) (storeCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL("/metrics"), nil)
	if err != nil {
		return storeCounts{}, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return storeCounts{}, fmt.Errorf("read flowd's metrics: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return storeCounts{}, fmt.Errorf("read flowd's metrics: status %d, %v", res.StatusCode, err)
	}
	var c storeCounts
	for _, m := range []struct {
		name string
		dst  *float64
	}{{"flowd_store_commits_total", &c.commits}, {"flowd_store_run_writes_total", &c.writes}} {
		found := regexp.MustCompile(`(?m)^` + m.name + ` (\S+)$`).FindSubmatch(body)
		if found == nil {
			return storeCounts{}, fmt.Errorf("read flowd's metrics: no %s", m.name)
		}
		if *m.dst, err = strconv.ParseFloat(string(found[1]), 64); err != nil {
			return storeCounts{}, fmt.Errorf("read flowd's metrics: %s: %w", m.name, err)
		}
	}
	return c, nil
}
