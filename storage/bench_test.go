package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

func BenchmarkLoadStatic(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	for i := range 4 {
		if err := s.CommitStatic(ctx, &engine.StaticCommit{FlowID: "f", Changes: []engine.StaticChange{{Key: fmt.Sprint("k", i), After: "2026-11-27T10:00:00.000Z"}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.LoadStatic(ctx, "f"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitStatic is one node's durable write of three keys, as the token flow's
// "2. set token in static data" makes.
func BenchmarkCommitStatic(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	b.ReportAllocs()
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
}

// BenchmarkRecordRun stores a token-flow-sized run: created, then finished with four nodes.
func BenchmarkRecordRun(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	item := engine.Item{"accessToken": "demo-Xp-g6deHi0Z3iNo6pCk6AiHSRLFOklWj", "expiresAt": "2026-11-27T08:18:42.315Z", "refreshAt": "2026-11-27T08:18:32.315Z"}
	b.ReportAllocs()
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
}
