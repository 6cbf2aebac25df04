package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// BenchmarkLoadStatic loads four keys with a cancellable ctx, as a run does.
func BenchmarkLoadStatic(b *testing.B) {
	s := openTest(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 4 {
		if err := s.CommitStatic(ctx, &engine.StaticCommit{FlowID: "f", Changes: []engine.StaticChange{{Key: fmt.Sprint("k", i), After: "2026-11-27T10:00:00.000Z"}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		if _, err := s.LoadStatic(ctx, "f"); err != nil {
			b.Fatal(err)
		}
	}
	cpuPerOp(b, cpu)
}

// BenchmarkCommitStatic is one node's durable write of three keys, as the token flow's
// "2. set token in static data" makes.
func BenchmarkCommitStatic(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	b.ReportAllocs()
	cpu := processCPU(b)
	n := 0
	for b.Loop() {
		n++
		c := &engine.StaticCommit{FlowID: "f", Changes: []engine.StaticChange{
			{Key: "accessToken", After: fmt.Sprint("tok-", n)},
			{Key: "expiresAt", After: "2026-11-27T11:00:00.000Z"},
			{Key: "refreshAt", After: "2026-11-27T10:59:50.000Z"},
		}}
		if err := s.CommitStatic(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	cpuPerOp(b, cpu)
}

// BenchmarkRecordRun stores a token-flow-sized run: created, then finished with four nodes.
func BenchmarkRecordRun(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	item := engine.Item{"accessToken": "demo-Xp-g6deHi0Z3iNo6pCk6AiHSRLFOklWj", "expiresAt": "2026-11-27T08:18:42.315Z", "refreshAt": "2026-11-27T08:18:32.315Z"}
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		now := time.Now()
		r := &engine.Run{ID: engine.NewRunID(now), FlowID: "token-refresh", FlowVersion: "8f1d617e5884", Trigger: "Webhook", Mode: "webhook", Status: engine.StatusRunning, StartedAt: now}
		if err := s.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
		for i, name := range []string{"Webhook", "1. initiate static data", "if token is valid", "continue with valid token"} {
			r.Nodes = append(r.Nodes, engine.NodeRun{Seq: i, Node: name, Type: "noOp", Status: engine.StatusSuccess, StartedAt: now, Tries: 1,
				Input: []engine.Item{item}, Output: [][]engine.Item{{item}}, Ports: []string{"main"}, InputCount: 1, OutputCounts: []int{1}})
		}
		r.Status, r.FinishedAt = engine.StatusSuccess, time.Now()
		if err := s.FinishRun(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	cpuPerOp(b, cpu)
}

// cpuPerOp reports the process's CPU time per operation since start: unlike ns/op it does not
// grow when other processes take the machine's cores, and for parallel benchmarks it is the
// cost of one operation on all cores together.
func cpuPerOp(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// recordToken records one copy of the steady-state token-flow run (testdata/token-run.json)
// as the executor does: CreateRun, then FinishRun with its four nodes.
func recordToken(b *testing.B, s *SQLite, tmpl *engine.Run) {
	ctx := context.Background()
	now := time.Now()
	r := *tmpl
	r.ID, r.StartedAt, r.FinishedAt, r.Status, r.Nodes = engine.NewRunID(now), now, time.Time{}, engine.StatusRunning, nil
	if err := s.CreateRun(ctx, &r); err != nil {
		b.Fatal(err)
	}
	r.Status, r.FinishedAt, r.Nodes = tmpl.Status, time.Now(), tmpl.Nodes
	if err := s.FinishRun(ctx, &r); err != nil {
		b.Fatal(err)
	}
}

// reportBytesPerRun reports the database's size per run recorded.
func reportBytesPerRun(b *testing.B, s *SQLite, runs int) {
	b.StopTimer()
	b.ReportMetric(float64(fileBytes(b, s))/float64(runs), "db-bytes/run")
}

// BenchmarkRecordTokenRun records the token flow's run from one goroutine: every write waits
// for its own commit.
func BenchmarkRecordTokenRun(b *testing.B) {
	s := openTest(b)
	tmpl := loadRun(b, "token-run.json")
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		recordToken(b, s, tmpl)
	}
	cpuPerOp(b, cpu)
	reportBytesPerRun(b, s, b.N)
}

// BenchmarkRecordTokenRunParallel records the token flow's run from 64 goroutines at once,
// as flowd serve does at concurrency 64: the writer commits their writes in batches.
func BenchmarkRecordTokenRunParallel(b *testing.B) {
	s := openTest(b)
	tmpl := loadRun(b, "token-run.json")
	before := s.wr.commits.Load()
	b.ReportAllocs()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	cpu := processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			recordToken(b, s, tmpl)
		}
	})
	cpuPerOp(b, cpu)
	b.ReportMetric(float64(2*b.N)/float64(s.wr.commits.Load()-before), "writes/commit")
	reportBytesPerRun(b, s, b.N)
}

// BenchmarkCommitStaticUnderLoad is CommitStatic's latency while 64 goroutines record runs:
// it waits for the write connection, for at most the batch being committed.
func BenchmarkCommitStaticUnderLoad(b *testing.B) {
	s := openTest(b)
	tmpl := loadRun(b, "token-run.json")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for ctx.Err() == nil {
				recordToken(b, s, tmpl)
			}
		})
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		c := &engine.StaticCommit{FlowID: "f", Changes: []engine.StaticChange{{Key: "accessToken", After: fmt.Sprint("tok-", n)}}}
		if err := s.CommitStatic(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cancel()
	wg.Wait()
}

func BenchmarkGetTokenRun(b *testing.B) {
	s := openTest(b)
	tmpl := loadRun(b, "token-run.json")
	if err := s.InsertRuns(context.Background(), []*engine.Run{tmpl}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		if _, err := s.GetRun(context.Background(), tmpl.ID); err != nil {
			b.Fatal(err)
		}
	}
	cpuPerOp(b, cpu)
}

// BenchmarkInsertRuns is the bulk insert per run, finished token-flow runs 10,000 at a time.
func BenchmarkInsertRuns(b *testing.B) {
	s := openTest(b)
	tmpl := loadRun(b, "token-run.json")
	const chunk = 10_000
	runs := make([]*engine.Run, chunk)
	start := time.Now()
	b.ReportAllocs()
	cpu := processCPU(b)
	n := 0
	for b.Loop() {
		for i := range runs {
			at := start.Add(time.Duration(n*chunk+i) * time.Millisecond)
			r := *tmpl
			r.ID, r.StartedAt, r.FinishedAt = benchID(at, n*chunk+i), at, at.Add(time.Millisecond)
			runs[i] = &r
		}
		n++
		if err := s.InsertRuns(context.Background(), runs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*chunk), "ns/run")
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(n*chunk), "cpu-ns/run")
}

// benchID is a run id in ULID layout for a run started at at, distinct for each n.
func benchID(at time.Time, n int) string {
	id := []byte(idAt(at))
	for i := len(id) - 1; n > 0; i, n = i-1, n>>5 {
		id[i] = crockford[n&31]
	}
	return string(id)
}

// listRunsDB is a database of 1,000,000 finished runs of 100 flows, 2% of them failed,
// one every 100 ms; made once per benchmark process with InsertRuns and removed by TestMain.
// The runs have no node records: listing never reads them.
var listRunsDB struct {
	once sync.Once
	dir  string
	err  error
}

const (
	listRuns  = 1_000_000
	listFlows = 100
)

// listRunsID is the id of the i-th run of listRunsDB.
func listRunsID(start time.Time, i int) string {
	return benchID(start.Add(time.Duration(i)*100*time.Millisecond), i)
}

func millionRuns(b *testing.B) (s *SQLite, start time.Time) {
	start = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).Add(-listRuns * 100 * time.Millisecond)
	listRunsDB.once.Do(func() {
		listRunsDB.dir, listRunsDB.err = os.MkdirTemp("", "flowd-bench-")
		if listRunsDB.err != nil {
			return
		}
		s, err := Open(context.Background(), filepath.Join(listRunsDB.dir, "flowd.db"))
		if err != nil {
			listRunsDB.err = err
			return
		}
		t0 := time.Now()
		const chunk = 100_000
		runs := make([]*engine.Run, chunk)
		for base := 0; base < listRuns && listRunsDB.err == nil; base += chunk {
			for j := range runs {
				i := base + j
				at := start.Add(time.Duration(i) * 100 * time.Millisecond)
				r := &engine.Run{ID: listRunsID(start, i), FlowID: fmt.Sprintf("flow-%03d", i%listFlows),
					FlowName: "Generated flow", FlowVersion: "v1", Trigger: "Webhook", Mode: "webhook",
					Status: engine.StatusSuccess, StartedAt: at, FinishedAt: at.Add(3 * time.Millisecond)}
				if i%50 == 7 {
					r.Status, r.Error, r.ErrorNode = engine.StatusError, "boom", "get new accessToken"
				}
				runs[j] = r
			}
			listRunsDB.err = s.InsertRuns(context.Background(), runs)
		}
		if err := s.Close(); err != nil && listRunsDB.err == nil {
			listRunsDB.err = err
		}
		fmt.Fprintf(os.Stderr, "generated %d runs with InsertRuns in %s\n", listRuns, time.Since(t0).Round(time.Millisecond))
	})
	if listRunsDB.err != nil {
		b.Fatal(listRunsDB.err)
	}
	s, err := Open(context.Background(), filepath.Join(listRunsDB.dir, "flowd.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, start
}

// BenchmarkListRuns1M lists a page of 50 runs out of 1,000,000: the newest, and deep down
// (900,000 runs back), unfiltered and filtered by flow, by status and by both.
func BenchmarkListRuns1M(b *testing.B) {
	s, start := millionRuns(b)
	deep := listRunsID(start, listRuns-900_000)
	tests := []struct {
		name string
		f    engine.RunFilter
	}{
		{"first page", engine.RunFilter{}},
		{"deep", engine.RunFilter{Before: deep}},
		{"flow first page", engine.RunFilter{FlowID: "flow-042"}},
		{"flow deep", engine.RunFilter{FlowID: "flow-042", Before: deep}},
		{"status first page", engine.RunFilter{Status: "error"}},
		{"status deep", engine.RunFilter{Status: "error", Before: deep}},
		{"flow and status first page", engine.RunFilter{FlowID: "flow-007", Status: "error"}},
		{"flow and status deep", engine.RunFilter{FlowID: "flow-007", Status: "error", Before: deep}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tt.f.Limit = 50
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				runs, err := s.ListRuns(context.Background(), tt.f)
				if err != nil {
					b.Fatal(err)
				}
				if len(runs) != 50 {
					b.Fatalf("%d runs listed, want 50", len(runs))
				}
			}
			cpuPerOp(b, cpu)
		})
	}
	b.Run("runs of a flow in 24 h", func(b *testing.B) {
		since := idAt(start.Add(listRuns*100*time.Millisecond - 24*time.Hour))
		b.ReportAllocs()
		cpu := processCPU(b)
		for b.Loop() {
			var n, failed int
			if err := s.r.QueryRowContext(context.Background(), countRunsSQL, "error", "crashed", "flow-007", since).Scan(&n, &failed); err != nil {
				b.Fatal(err)
			}
			if n == 0 || failed == 0 {
				b.Fatalf("%d runs, %d failed", n, failed)
			}
		}
		cpuPerOp(b, cpu)
	})
}
