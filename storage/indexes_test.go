package storage

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
)

// TestQueryPlans checks that every query on runs reads through the index made for it, without
// sorting: their cost then depends on the rows they return, not on how many runs are stored.
func TestQueryPlans(t *testing.T) {
	s := openTest(t)
	list := func(f engine.RunFilter) (string, []any) { return listRunsQuery(f) }
	const cursor = "01M8E0KVD800070708247Y94WV"
	tests := []struct {
		name  string
		query string
		args  []any
		index string
	}{
		{"list", "", nil, "sqlite_autoindex_runs_1"},
		{"list deep", "", []any{engine.RunFilter{Before: cursor}}, "sqlite_autoindex_runs_1"},
		{"list by flow", "", []any{engine.RunFilter{FlowID: "f"}}, "runs_flow"},
		{"list by flow deep", "", []any{engine.RunFilter{FlowID: "f", Before: cursor}}, "runs_flow"},
		{"list by status", "", []any{engine.RunFilter{Status: "error"}}, "runs_status"},
		{"list by status deep", "", []any{engine.RunFilter{Status: "error", Before: cursor}}, "runs_status"},
		{"list by flow and status", "", []any{engine.RunFilter{FlowID: "f", Status: "error"}}, "runs_flow_status"},
		{"list by flow and status deep", "", []any{engine.RunFilter{FlowID: "f", Status: "error", Before: cursor}}, "runs_flow_status"},
		{"runs since", countRunsSQL, []any{"error", "crashed", "f", cursor}, "runs_flow"},
		{"mark crashed", markCrashedSQL, []any{"crashed", 0, "", "running"}, "runs_status"},
		{"prune by age", oldRunsSQL, []any{cursor, 0, 500}, "sqlite_autoindex_runs_1"},
		{"prune: oldest kept", oldestKeptSQL, []any{"f", 99}, "runs_flow"},
		{"prune by count", flowRunsBeforeSQL, []any{"f", cursor, 500}, "runs_flow"},
		{"prune: flows", flowIDsSQL, nil, `runs_flow\w*`},
		{"get run", `SELECT nodes FROM runs WHERE id = ?`, []any{cursor}, "sqlite_autoindex_runs_1"},
		{"list successful runs", "", []any{engine.RunFilter{Status: "success", Before: cursor}}, "sqlite_autoindex_runs_1"},
		{"list successful runs of a flow", "", []any{engine.RunFilter{FlowID: "f", Status: "success", Before: cursor}}, "runs_flow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, args := tt.query, tt.args
			if q == "" {
				f := engine.RunFilter{}
				if len(args) > 0 {
					f = args[0].(engine.RunFilter)
				}
				q, args = list(f)
			}
			plan := queryPlan(t, s, q, args...)
			if !regexp.MustCompile(`USING (COVERING )?INDEX ` + tt.index + `\b`).MatchString(plan) {
				t.Errorf("plan does not use %s:\n%s", tt.index, plan)
			}
			t.Logf("%s", plan)
			for _, bad := range []string{"TEMP B-TREE", "SCAN runs\n", "SCAN runs USING INDEX runs_status"} {
				if strings.Contains(plan+"\n", bad) {
					t.Errorf("plan has %q:\n%s", strings.TrimSpace(bad), plan)
				}
			}
		})
	}
}

// queryPlan is EXPLAIN QUERY PLAN's detail lines for q, one a line.
func queryPlan(t *testing.T, s *SQLite, q string, args ...any) string {
	t.Helper()
	rows, err := s.w.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
