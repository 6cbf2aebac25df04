package main

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage/postgres/pgtest"
	"github.com/flowd/flowd/web"
)

// The tests in this file run several real `flowd serve` processes on one throw-away
// PostgreSQL database, as a cluster behind a load balancer would (docs/cluster.md).

const clusterSize = 3

// startCluster starts n flowd serve processes on one database.
func startCluster(t *testing.T, n int, flows, dsn string, env []string) []*server {
	t.Helper()
	servers := make([]*server, n)
	for i := range servers {
		servers[i] = startServe(t, flows, dsn, env)
	}
	return servers
}

// clusterHealth is the cluster field of s's /healthz.
func clusterHealth(t *testing.T, s *server) web.ClusterStatus {
	t.Helper()
	var body struct {
		Cluster *web.ClusterStatus `json:"cluster"`
	}
	if code := s.call("GET", "/healthz", "", "", &body); code != 200 || body.Cluster == nil {
		t.Fatalf("/healthz of an instance on PostgreSQL: %d, cluster %v", code, body.Cluster)
	}
	return *body.Cluster
}

// TestClusterBurstRefreshesOnce: 50 webhook requests at once, spread over three instances,
// on an expired token cause exactly one refresh, and all 50 answers carry that token — ten
// rounds in a row, with a token endpoint that answers at once and one that takes 200 ms.
func TestClusterBurstRefreshesOnce(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{0, 200 * time.Millisecond} {
		t.Run(fmt.Sprintf("endpoint delay %s", delay), func(t *testing.T) {
			var hits atomic.Int64
			tokenURL := slowTokenServer(t, delay, &hits)
			servers := startCluster(t, clusterSize, flowsDir(t, nil), pgtest.NewDatabase(t), []string{"TOKEN_URL=" + tokenURL})
			for round := range 10 {
				burstRound(t, round, servers, &hits)
			}
		})
	}
}

// tickFlow fires every second.
const tickFlow = `{"id": "tick", "settings": {"timezone": "UTC"}, "nodes": [
	{"name": "Every second", "type": "scheduleTrigger", "parameters": {"interval": "1s"}},
	{"name": "Done", "type": "noOp"}
], "connections": {"Every second": ["Done"]}}`

// tickRuns reads the runs of the tick flow through the instances' API, remembering the tick
// of each finished run.
type tickRuns struct {
	t     *testing.T
	ticks map[string]time.Time // by run id
}

// read returns the tick of every finished run so far, oldest first, and whether a run is
// still running (its tick not read yet).
func (r *tickRuns) read(s *server) (ticks []time.Time, running bool) {
	t := r.t
	t.Helper()
	for before := ""; ; {
		var page struct {
			Runs []engine.Run `json:"runs"`
			Next string       `json:"next"`
		}
		if code := s.call("GET", "/api/runs?flow=tick&limit=500&before="+before, "", "", &page); code != 200 {
			t.Fatalf("list runs: %d", code)
		}
		for _, sum := range page.Runs {
			if sum.Status == engine.StatusRunning {
				running = true
				continue
			}
			if _, ok := r.ticks[sum.ID]; ok {
				continue
			}
			var run engine.Run
			if code := s.call("GET", "/api/runs/"+sum.ID, "", "", &run); code != 200 || run.Status != engine.StatusSuccess ||
				len(run.Nodes) == 0 || len(run.Nodes[0].Output) == 0 || len(run.Nodes[0].Output[0]) == 0 {
				t.Fatalf("run %s: %d %+v", sum.ID, code, run)
			}
			at, err := engine.ParseDateTime(run.Nodes[0].Output[0][0]["timestamp"], time.UTC)
			if err != nil {
				t.Fatalf("run %s: tick: %v", sum.ID, err)
			}
			r.ticks[sum.ID] = at
		}
		if page.Next == "" {
			break
		}
		before = page.Next
	}
	return slices.SortedFunc(maps.Values(r.ticks), time.Time.Compare), running
}

// twice returns the ticks, sorted, that fired more than once.
func twice(ticks []time.Time) []time.Time {
	var dup []time.Time
	for i := 1; i < len(ticks); i++ {
		if ticks[i].Equal(ticks[i-1]) {
			dup = append(dup, ticks[i])
		}
	}
	return dup
}

// scheduleLeader returns the index of the one live instance that holds the schedule lease,
// as their /healthz say, waiting until exactly one does.
func scheduleLeader(t *testing.T, servers []*server, dead int) int {
	t.Helper()
	found := -1
	eventually(t, "exactly one instance holding the schedule lease", func() bool {
		found = -1
		for i, s := range servers {
			if i == dead || !clusterHealth(t, s).ScheduleLeader {
				continue
			}
			if found >= 0 {
				return false
			}
			found = i
		}
		return found >= 0
	})
	return found
}

// TestClusterSchedule: a per-second schedule on three instances fires each tick once in all,
// ten runs in ten seconds (± 1); and when the instance holding the schedule lease is killed
// with SIGKILL, another fires the ticks within 5 seconds.
func TestClusterSchedule(t *testing.T) {
	t.Parallel()
	servers := startCluster(t, clusterSize, flowsDir(t, map[string]string{"tick.json": tickFlow}), pgtest.NewDatabase(t), nil)
	lead := scheduleLeader(t, servers, -1)

	// Count the runs whose tick falls in a 10 s window that starts after the first run.
	runs := &tickRuns{t: t, ticks: map[string]time.Time{}}
	var ticks []time.Time
	eventually(t, "the first scheduled run", func() bool {
		ticks, _ = runs.read(servers[0])
		return len(ticks) > 0
	})
	from, to := ticks[0].Add(time.Second), ticks[0].Add(11*time.Second)
	eventually(t, "a run after the 10 s window, and none running", func() bool {
		time.Sleep(200 * time.Millisecond) // poll gently: each read is several requests
		var running bool
		ticks, running = runs.read(servers[1])
		return !running && ticks[len(ticks)-1].After(to)
	})
	inWindow := 0
	for _, at := range ticks {
		if !at.Before(from) && at.Before(to) {
			inWindow++
		}
	}
	if inWindow < 9 || inWindow > 11 {
		t.Errorf("%d runs with ticks in [%v, %v), want 10 ± 1; all ticks %v", inWindow, from, to, ticks)
	}
	if dup := twice(ticks); len(dup) > 0 {
		t.Errorf("ticks fired more than once: %v", dup)
	}
	t.Logf("%d runs in the 10 s window, %d in all", inWindow, len(ticks))

	// Kill the holder of the schedule lease: another instance fires within 5 s.
	servers[lead].stop(syscall.SIGKILL)
	killed := time.Now()
	other := servers[(lead+1)%clusterSize]
	eventually(t, "a tick fired after the lease holder was killed", func() bool {
		time.Sleep(100 * time.Millisecond) // poll gently
		ticks, _ = runs.read(other)
		return ticks[len(ticks)-1].After(killed)
	})
	next := ticks[slices.IndexFunc(ticks, func(at time.Time) bool { return at.After(killed) })]
	if gap := next.Sub(killed); gap > 5*time.Second {
		t.Errorf("first tick after the kill at %v is %v: %v later, want within 5s", killed, next, gap)
	} else {
		t.Logf("failover: the first tick after kill -9 was due %v after it", gap.Round(10*time.Millisecond))
	}
	if dup := twice(ticks); len(dup) > 0 {
		t.Errorf("ticks fired more than once across the handover: %v", dup)
	}
	newLead := scheduleLeader(t, servers, lead)
	if n := clusterHealth(t, servers[newLead]).Instances; n != clusterSize-1 {
		t.Errorf("the new leader counts %d live instances, want %d", n, clusterSize-1)
	}

	// A clean stop of the new leader hands the lease over and leaves the cluster.
	last := servers[3-lead-newLead]
	if code := servers[newLead].stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if log := servers[newLead].log.String(); !strings.Contains(log, "cluster: released the schedule lease") {
		t.Errorf("the leader stopped without releasing the schedule lease:\n%s", log)
	}
	eventually(t, "the last instance alone, holding the lease", func() bool {
		st := clusterHealth(t, last)
		return st.ScheduleLeader && st.Instances == 1
	})
}

// TestClusterRecoversCrashedRuns: a run left running by an instance killed with SIGKILL is
// seen running through another instance's API while its instance lives, and crashed once the
// dead instance's heartbeat has expired.
func TestClusterRecoversCrashedRuns(t *testing.T) {
	t.Parallel()
	slowURL, arrived, _ := blockingServer(t)
	servers := startCluster(t, 2, flowsDir(t, map[string]string{"slow.json": slowFlow}), pgtest.NewDatabase(t), []string{"SLOW_URL=" + slowURL})
	a, b := servers[0], servers[1]
	go func() { _, _ = http.Post(a.url("/webhook/slow"), "application/json", nil) }()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow run never reached its HTTP call")
	}

	var list struct {
		Runs []engine.Run `json:"runs"`
	}
	if code := b.call("GET", "/api/runs?flow=slow", "", "", &list); code != 200 || len(list.Runs) != 1 || list.Runs[0].Status != engine.StatusRunning {
		t.Fatalf("the other instance's API: %d %+v, want the one run running", code, list.Runs)
	}
	id, started := list.Runs[0].ID, list.Runs[0].StartedAt
	// While a lives, b's recoveries (every ttl) leave its run alone. Nothing says when b has
	// recovered once more since the run started: wait for the time that takes.
	time.Sleep(time.Until(started.Add(defaultClusterTTL + beatInterval(defaultClusterTTL))))
	var run engine.Run
	if code := b.call("GET", "/api/runs/"+id, "", "", &run); code != 200 || run.Status != engine.StatusRunning {
		t.Fatalf("the run of a live instance, after b's recovery: %d %s", code, run.Status)
	}

	a.stop(syscall.SIGKILL)
	killed := time.Now()
	eventually(t, "the dead instance's run marked crashed", func() bool {
		if code := b.call("GET", "/api/runs/"+id, "", "", &run); code != 200 {
			t.Fatalf("get run: %d", code)
		}
		return run.Status != engine.StatusRunning
	})
	if run.Status != engine.StatusCrashed {
		t.Fatalf("run %s is %s, want crashed", id, run.Status)
	}
	t.Logf("marked crashed %v after the kill", time.Since(killed).Round(100*time.Millisecond))
}

// TestClusterFlowVersionsDiffer: an instance whose flows folder differs from another's says
// so in its log and /healthz — still 200 — until the folders agree again.
func TestClusterFlowVersionsDiffer(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	hello, err := os.ReadFile(filepath.Join(repoRoot(t), "flows", "hello.json"))
	if err != nil {
		t.Fatal(err)
	}
	dirA := flowsDir(t, map[string]string{"hello.json": string(hello)})
	dirB := flowsDir(t, map[string]string{"hello.json": strings.Replace(string(hello), "Hello, with a call counter", "Hello, edited on b only", 1)})
	a := startServe(t, dirA, dsn, nil)
	b := startServe(t, dirB, dsn, nil)

	var st web.ClusterStatus
	eventually(t, "a reporting hello's versions differ", func() bool {
		st = clusterHealth(t, a)
		return len(st.FlowsDiffer) > 0
	})
	if st.Instances != 2 || len(st.FlowsDiffer) != 1 || st.FlowsDiffer[0].Flow != "hello" || len(st.FlowsDiffer[0].Versions) != 2 ||
		st.FlowsDiffer[0].Versions[st.Instance] == st.FlowsDiffer[0].Versions[clusterHealth(t, b).Instance] {
		t.Fatalf("a's /healthz cluster field: %+v", st)
	}
	eventually(t, "the warning in a's log", func() bool {
		return strings.Contains(a.log.String(), `msg="cluster: flow versions differ from other instances; deploy the same flows folder to every instance" flows=hello instances=`)
	})

	// Deploy a's file to b: b reloads it, and both agree again.
	if err := os.WriteFile(filepath.Join(dirB, "hello.json"), hello, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a and b agreeing again", func() bool {
		return len(clusterHealth(t, a).FlowsDiffer) == 0 && len(clusterHealth(t, b).FlowsDiffer) == 0
	})
	eventually(t, "the all-clear in a's log", func() bool {
		return strings.Contains(a.log.String(), "cluster: flow versions agree with every live instance again")
	})
}

// docBlock returns the first fenced block of doc that opens with fence and contains marker.
func docBlock(t *testing.T, doc, fence, marker string) string {
	t.Helper()
	for rest := doc; ; {
		_, after, ok := strings.Cut(rest, "\n"+fence+"\n")
		if !ok {
			t.Fatalf("no %s block containing %q", fence, marker)
		}
		block, tail, ok := strings.Cut(after, "\n```")
		if !ok {
			t.Fatalf("unterminated %s block", fence)
		}
		if strings.Contains(block, marker) {
			return block
		}
		rest = tail
	}
}

// TestClusterDocExample starts three instances as docs/cluster.md's systemd template unit
// and environment file say, replacing only what is the test machine's own: the listen
// address, the database, the flows folder and the token endpoint. They must form one
// cluster with one schedule leader.
func TestClusterDocExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "cluster.md"))
	if err != nil {
		t.Fatal(err)
	}
	unit := docBlock(t, string(doc), "```ini", "[Service]")
	envFile := docBlock(t, string(doc), "```sh", "FLOWD_DB=")

	fileEnv := map[string]string{}
	for _, line := range strings.Split(envFile, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("environment file line %q is not NAME=value", line)
		}
		fileEnv[k] = v
	}
	var unitEnv []string
	var execStart []string
	for _, line := range strings.Split(unit, "\n") {
		switch k, v, _ := strings.Cut(line, "="); k {
		case "Environment":
			unitEnv = append(unitEnv, v)
		case "EnvironmentFile":
			if v != "/etc/flowd/flowd.env" {
				t.Errorf("the unit reads %s, the docs show /etc/flowd/flowd.env", v)
			}
		case "ExecStart":
			execStart = strings.Fields(v)
		}
	}
	if len(execStart) < 2 || filepath.Base(execStart[0]) != "flowd" || execStart[1] != "serve" {
		t.Fatalf("ExecStart %q does not run flowd serve", execStart)
	}

	ts := newTokenServer(t, 3600)
	dsn, flows := pgtest.NewDatabase(t), flowsDir(t, nil)
	replaced := map[string]string{"FLOWD_DB": dsn, "FLOWD_FLOWS": flows, "TOKEN_URL": ts.URL}
	for k := range replaced {
		if _, ok := fileEnv[k]; !ok {
			t.Errorf("the environment file does not set %s", k)
		}
	}
	addrs := map[string]bool{}
	servers := make([]*server, clusterSize)
	for i := range servers {
		var env []string
		for k, v := range fileEnv {
			if r, ok := replaced[k]; ok {
				v = r
			}
			env = append(env, k+"="+v)
		}
		for _, kv := range unitEnv { // after the file's: systemd's Environment= wins
			kv = strings.ReplaceAll(kv, "%i", fmt.Sprint(i+1))
			if addr, ok := strings.CutPrefix(kv, "FLOWD_ADDR="); ok {
				if !isLoopback(addr) || addrs[addr] {
					t.Errorf("instance %d would listen on %s", i+1, addr)
				}
				addrs[addr] = true
			}
			env = append(env, kv)
		}
		// --addr 127.0.0.1:0 (startServe's) stands in for FLOWD_ADDR, which is free here.
		servers[i] = startServe(t, flows, dsn, env, execStart[2:]...)
	}
	leaders := 0
	eventually(t, "three instances, one schedule leader", func() bool {
		leaders = 0
		for _, s := range servers {
			st := clusterHealth(t, s)
			if st.Instances != clusterSize || len(st.FlowsDiffer) > 0 {
				return false
			}
			if st.ScheduleLeader {
				leaders++
			}
		}
		return leaders == 1
	})
	for _, s := range servers {
		if !strings.Contains(s.log.String(), "static data is encrypted at rest") {
			t.Errorf("an instance does not encrypt static data with the documented key:\n%s", s.log.String())
		}
	}
}
