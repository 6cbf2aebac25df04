package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files of the validate tests")

// TestValidateGolden runs `flowd validate` on each broken flow in testdata/invalid and compares
// the exit code and every printed problem with the file's .golden twin, which pins the wording
// and positions. Refresh them with: go test ./cmd/flowd -run ValidateGolden -update
func TestValidateGolden(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "testdata", "invalid", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test flows: %v", err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := flowd(t, nil, "validate", rel)
			got := fmt.Sprintf("exit %d\n%s", r.code, r.stdout)
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("validate %s:\ngot:\n%s\nwant:\n%s", rel, got, want)
			}
			if r.code == 0 && strings.Contains(r.stdout, ": warning:") == false {
				t.Errorf("%s is in testdata/invalid but has no problem", rel)
			}
		})
	}
}

// TestShippedFlowsValidate loads every flow in flows/, so the examples cannot rot.
func TestShippedFlowsValidate(t *testing.T) {
	r := flowd(t, nil, "validate", "flows")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestValidateSeveralFiles(t *testing.T) {
	r := flowd(t, nil, "validate", "flows/token-refresh.json", "testdata/invalid/cycle.json", "testdata/invalid/unreachable.json")
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 3 flow files invalid") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "\n"); n != 2 {
		t.Errorf("want 2 problem lines (a cycle and a warning), got:\n%s", r.stdout)
	}
}

// TestNodeReferenceIsCurrent keeps docs/nodes.md equal to what `flowd nodes` prints.
// Refresh it with: go run ./cmd/flowd nodes > docs/nodes.md
func TestNodeReferenceIsCurrent(t *testing.T) {
	r := flowd(t, nil, "nodes")
	want, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "nodes.md"))
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || r.stdout != string(want) {
		t.Fatalf("docs/nodes.md is stale: run `go run ./cmd/flowd nodes > docs/nodes.md`")
	}
	for _, typ := range []string{"webhook", "scheduleTrigger", "code", "if", "httpRequest", "noOp"} {
		if !strings.Contains(r.stdout, "## `"+typ+"`") {
			t.Errorf("reference lacks %s", typ)
		}
	}
}
