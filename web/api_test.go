package web

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

var apiFlows = map[string]string{
	"count.json": `{"id": "count", "name": "Counter", "settings": {"timeout": "30s", "timezone": "Europe/Berlin"},
	 "nodes": [
		{"name": "Webhook", "type": "webhook", "position": [0, 0], "parameters": {"path": "count/:who", "httpMethod": ["GET", "POST"], "responseMode": "lastNode"}},
		{"name": "Count", "type": "code", "position": [240, 0], "notes": "counts calls", "parameters": {
			"code": ["$static.calls = ($static.calls ?? 0) + 1"],
			"return": {"calls": "{{ $static.calls }}", "name": "{{ $json.name }}", "n": "{{ len($input) }}"}}}],
	 "connections": {"Webhook": ["Count"]}}`,
	"sched.json": `{"nodes": [
		{"name": "Every hour", "type": "scheduleTrigger", "parameters": {"interval": "1h", "timezone": "UTC"}},
		{"name": "Nightly", "type": "n8n-nodes-base.scheduleTrigger", "parameters": {"cron": "0 3 * * *", "catchUp": "last"}},
		{"name": "Check", "type": "if", "parameters": {"condition": "{{ $json.ok == true }}"}},
		{"name": "Yes", "type": "noOp"}],
	 "connections": {"Every hour": ["Check"], "Nightly": ["Check"], "Check": {"true": ["Yes"]}}}`,
	"notrigger.json": `{"nodes": [{"name": "Alone", "type": "noOp"}]}`,
}

func TestAPIFlows(t *testing.T) {
	next := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	e := newEnv(t, apiFlows, envOptions{schedules: fixedSchedules{next: next}})
	host := strings.TrimPrefix(e.url, "http://")

	// A run, so that lastRun is set.
	ran := e.postJSON(t, "/webhook/count/ada", `{}`)
	if ran.status != 200 {
		t.Fatalf("webhook: %d %s", ran.status, ran.body)
	}
	runID := ran.header.Get(runIDHeader)
	e.store.waitRun(t, runID)

	t.Run("list", func(t *testing.T) {
		res := e.get(t, "/api/flows")
		var body struct {
			Flows []map[string]any `json:"flows"`
		}
		res.decode(t, &body)
		var ids []string
		for _, f := range body.Flows {
			ids = append(ids, f["id"].(string))
			for _, k := range []string{"definition", "nodes", "connections"} {
				if _, ok := f[k]; ok {
					t.Errorf("list view of %s has %s", f["id"], k)
				}
			}
		}
		if res.status != 200 || !slices.Equal(ids, []string{"count", "notrigger", "sched"}) {
			t.Fatalf("status %d ids %v", res.status, ids)
		}
		if last, _ := body.Flows[0]["lastRun"].(map[string]any); last["id"] != runID || last["status"] != "success" || last["nodes"] != nil {
			t.Errorf("lastRun %v", body.Flows[0]["lastRun"])
		}
		if body.Flows[1]["lastRun"] != nil {
			t.Errorf("lastRun of a flow that never ran: %v", body.Flows[1]["lastRun"])
		}
	})

	t.Run("webhook flow", func(t *testing.T) {
		res := e.get(t, "/api/flows/count")
		var v map[string]any
		res.decode(t, &v)
		if res.status != 200 || v["id"] != "count" || v["name"] != "Counter" || v["file"] != "flows/count.json" || len(v["version"].(string)) == 0 {
			t.Fatalf("status %d view %v", res.status, v)
		}
		if !reflect.DeepEqual(v["settings"], map[string]any{"timeout": "30s", "timezone": "Europe/Berlin"}) {
			t.Errorf("settings %v", v["settings"])
		}
		wantNodes := []any{
			map[string]any{"name": "Webhook", "type": "webhook", "position": []any{0.0, 0.0}, "disabled": false, "ports": []any{"main"}},
			map[string]any{"name": "Count", "type": "code", "position": []any{240.0, 0.0}, "disabled": false, "notes": "counts calls", "ports": []any{"main"}},
		}
		if !reflect.DeepEqual(v["nodes"], wantNodes) {
			t.Errorf("nodes %v", v["nodes"])
		}
		if !reflect.DeepEqual(v["connections"], map[string]any{"Webhook": map[string]any{"main": []any{"Count"}}}) {
			t.Errorf("connections %v", v["connections"])
		}
		var def map[string]any
		if err := json.Unmarshal([]byte(apiFlows["count.json"]), &def); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v["definition"], def) {
			t.Errorf("definition %v", v["definition"])
		}
		wantTriggers := []any{map[string]any{"node": "Webhook", "type": "webhook", "webhook": map[string]any{
			"methods": []any{"GET", "POST"}, "path": "count/:who", "url": "http://" + host + "/webhook/count/:who",
			"responseMode": "lastNode", "responseData": "firstEntryJson",
		}}}
		if !reflect.DeepEqual(v["triggers"], wantTriggers) {
			t.Errorf("triggers %v", v["triggers"])
		}
		if v["lastRun"].(map[string]any)["id"] != runID {
			t.Errorf("lastRun %v", v["lastRun"])
		}
	})

	t.Run("schedule flow", func(t *testing.T) {
		res := e.get(t, "/api/flows/sched")
		var v map[string]any
		res.decode(t, &v)
		want := []any{
			map[string]any{"node": "Every hour", "type": "scheduleTrigger", "schedule": map[string]any{
				"interval": "1h0m0s", "timezone": "UTC", "catchUp": "none", "next": "2030-01-02T03:00:00Z"}},
			map[string]any{"node": "Nightly", "type": "scheduleTrigger", "schedule": map[string]any{
				"cron": "0 3 * * *", "timezone": "Local", "catchUp": "last", "next": "2030-01-02T03:00:00Z"}},
		}
		if !reflect.DeepEqual(v["triggers"], want) {
			t.Errorf("triggers %v", v["triggers"])
		}
		if !reflect.DeepEqual(v["connections"], map[string]any{
			"Every hour": map[string]any{"main": []any{"Check"}}, "Nightly": map[string]any{"main": []any{"Check"}},
			"Check": map[string]any{"true": []any{"Yes"}},
		}) {
			t.Errorf("connections %v", v["connections"])
		}
		if v["lastRun"] != nil {
			t.Errorf("lastRun %v", v["lastRun"])
		}
	})

	t.Run("unknown flow", func(t *testing.T) {
		res := e.get(t, "/api/flows/nope")
		if body := res.json(t); res.status != 404 || body["error"] != `flow "nope" not found` || body["code"] != json.Number("404") {
			t.Fatalf("status %d body %s", res.status, res.body)
		}
	})
}

func TestAPIRunFlow(t *testing.T) {
	e := newEnv(t, apiFlows, envOptions{})
	tests := []struct {
		name       string
		flow       string
		body       string
		wantStatus int
		wantError  string
		check      func(t *testing.T, run *engine.Run)
	}{
		{name: "no body", flow: "count", wantStatus: 200, check: func(t *testing.T, run *engine.Run) {
			if run.Trigger != "Webhook" || len(run.Nodes[0].Input) != 1 || len(run.Nodes[0].Input[0]) != 0 {
				t.Errorf("run %+v", run)
			}
		}},
		{name: "one item", flow: "count", body: `{"input": {"name": "Ada", "n": 2}}`, wantStatus: 200, check: func(t *testing.T, run *engine.Run) {
			out := run.Nodes[1].Output[0][0]
			if out["name"] != "Ada" || run.Nodes[0].Input[0]["n"] != int64(2) {
				t.Errorf("output %v input %v", out, run.Nodes[0].Input)
			}
		}},
		{name: "a list of items", flow: "count", body: `{"input": [{"name": "a"}, {"name": "b"}]}`, wantStatus: 200, check: func(t *testing.T, run *engine.Run) {
			if out := run.Nodes[1].Output[0][0]; out["n"] != int64(2) || out["name"] != "a" {
				t.Errorf("output %v", out)
			}
		}},
		{name: "named trigger", flow: "sched", body: `{"trigger": "Nightly", "input": {"ok": true}}`, wantStatus: 200, check: func(t *testing.T, run *engine.Run) {
			if run.Trigger != "Nightly" || run.Nodes[len(run.Nodes)-1].Node != "Yes" {
				t.Errorf("run %+v", run)
			}
		}},
		{name: "null input", flow: "count", body: `{"input": null}`, wantStatus: 200},
		{name: "unknown trigger", flow: "sched", body: `{"trigger": "Check"}`, wantStatus: 400, wantError: `flow "sched" has no trigger node "Check"`},
		{name: "no trigger at all", flow: "notrigger", wantStatus: 400, wantError: `flow "notrigger" has no trigger node`},
		{name: "input not an object", flow: "count", body: `{"input": 5}`, wantStatus: 400, wantError: "input must be an object or a list of objects"},
		{name: "list of non-objects", flow: "count", body: `{"input": [{}, 1]}`, wantStatus: 400, wantError: "input[1]: input must be an object"},
		{name: "unknown field", flow: "count", body: `{"inputs": {}}`, wantStatus: 400, wantError: `malformed request body: json: unknown field "inputs"`},
		{name: "malformed body", flow: "count", body: `{"input": `, wantStatus: 400, wantError: "malformed request body"},
		{name: "unknown flow", flow: "nope", wantStatus: 404, wantError: `flow "nope" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.postJSON(t, "/api/flows/"+tt.flow+"/run", tt.body)
			if res.status != tt.wantStatus {
				t.Fatalf("status %d body %s", res.status, res.body)
			}
			if tt.wantError != "" {
				if body := res.json(t); !strings.Contains(fmt.Sprint(body["error"]), tt.wantError) {
					t.Fatalf("body %s, want error %q", res.body, tt.wantError)
				}
				return
			}
			var run engine.Run
			res.decode(t, &run)
			if run.Mode != "manual" || run.Status != engine.StatusSuccess || run.FlowID != tt.flow || len(run.Nodes) == 0 {
				t.Fatalf("run %s", res.body)
			}
			stored := e.store.waitRun(t, run.ID)
			if tt.check != nil {
				tt.check(t, stored)
			}
		})
	}
}

func TestAPIStatic(t *testing.T) {
	e := newEnv(t, apiFlows, envOptions{})
	for range 2 {
		if res := e.postJSON(t, "/api/flows/count/run", ""); res.status != 200 {
			t.Fatalf("run: %d %s", res.status, res.body)
		}
	}
	steps := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string
	}{
		{"read", "GET", "/api/flows/count/static", 200, `{"data":{"calls":2},"flowId":"count"}`},
		{"read a flow without data", "GET", "/api/flows/sched/static", 200, `{"data":{},"flowId":"sched"}`},
		{"reset", "DELETE", "/api/flows/count/static", 204, ``},
		{"read after reset", "GET", "/api/flows/count/static", 200, `{"data":{},"flowId":"count"}`},
		{"read unknown flow", "GET", "/api/flows/nope/static", 404, `{"error":"flow \"nope\" not found","code":404}`},
		{"reset unknown flow", "DELETE", "/api/flows/nope/static", 404, `{"error":"flow \"nope\" not found","code":404}`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			res := e.do(t, st.method, st.target, "", nil)
			if got := strings.TrimSpace(string(res.body)); res.status != st.wantStatus || got != st.wantBody {
				t.Fatalf("status %d body %s, want %d %s", res.status, got, st.wantStatus, st.wantBody)
			}
		})
	}
}

func TestAPIRuns(t *testing.T) {
	e := newEnv(t, apiFlows, envOptions{})
	var ids []string // newest first
	for i := range 7 {
		target := "/api/flows/count/run"
		body := `{"input": {"name": "ok"}}`
		if i == 3 {
			target = "/api/flows/sched/run"
			body = ""
		}
		res := e.postJSON(t, target, body)
		var run engine.Run
		res.decode(t, &run)
		ids = append([]string{run.ID}, ids...)
	}

	for _, limit := range []int{1, 2, 3, 6, 7, 8} {
		t.Run(fmt.Sprintf("pages of %d", limit), func(t *testing.T) {
			var got []string
			cursor, pages := "", 0
			for {
				res := e.get(t, fmt.Sprintf("/api/runs?limit=%d&before=%s", limit, cursor))
				var page struct {
					Runs []map[string]any `json:"runs"`
					Next string           `json:"next"`
				}
				res.decode(t, &page)
				if res.status != 200 || len(page.Runs) > limit {
					t.Fatalf("status %d page %s", res.status, res.body)
				}
				pages++
				for _, r := range page.Runs {
					got = append(got, r["id"].(string))
					if _, ok := r["nodes"]; ok {
						t.Errorf("list entry has nodes: %v", r)
					}
				}
				if page.Next == "" {
					break
				}
				if page.Next != got[len(got)-1] {
					t.Fatalf("next %q is not the page's last id %q", page.Next, got[len(got)-1])
				}
				cursor = page.Next
			}
			if !slices.Equal(got, ids) {
				t.Fatalf("paged ids\n%v\nwant\n%v", got, ids)
			}
			if want := (len(ids) + limit - 1) / limit; pages != want {
				t.Errorf("%d pages, want %d (no empty last page)", pages, want)
			}
		})
	}

	filters := []struct {
		name, query string
		want        []string
	}{
		{"by flow", "?flow=sched", []string{ids[3]}},
		{"by flow and status", "?flow=count&status=success", slices.Concat(ids[:3], ids[4:])},
		{"by status", "?status=error", nil},
		{"default limit", "", ids},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			var page struct {
				Runs []struct {
					ID         string `json:"id"`
					Mode       string `json:"mode"`
					DurationMs *int64 `json:"durationMs"`
				} `json:"runs"`
				Next *string `json:"next"`
			}
			e.get(t, "/api/runs"+tt.query).decode(t, &page)
			var got []string
			for _, r := range page.Runs {
				got = append(got, r.ID)
				if r.Mode != "manual" || r.DurationMs == nil {
					t.Errorf("summary %+v", r)
				}
			}
			if !slices.Equal(got, tt.want) || page.Next == nil || *page.Next != "" {
				t.Fatalf("ids %v next %v, want %v", got, page.Next, tt.want)
			}
		})
	}

	bad := []struct{ name, query, want string }{
		{"limit not a number", "?limit=ten", `limit must be a whole number from 1 to 500, got "ten"`},
		{"limit zero", "?limit=0", "limit must be a whole number from 1 to 500"},
		{"limit too big", "?limit=501", "limit must be a whole number from 1 to 500"},
		{"unknown status", "?status=done", `status must be one of running, success, error, canceled, crashed, got "done"`},
		{"unknown parameter", "?flowId=count", `unknown query parameter "flowId"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res := e.get(t, "/api/runs"+tt.query)
			if body := res.json(t); res.status != 400 || !strings.Contains(fmt.Sprint(body["error"]), tt.want) || body["code"] != json.Number("400") {
				t.Fatalf("status %d body %s", res.status, res.body)
			}
		})
	}

	t.Run("one run", func(t *testing.T) {
		res := e.get(t, "/api/runs/"+ids[0])
		var run engine.Run
		res.decode(t, &run)
		if res.status != 200 || run.ID != ids[0] || len(run.Nodes) != 2 || run.Nodes[1].Output[0][0]["name"] != "ok" || run.Nodes[0].Input[0]["name"] != "ok" {
			t.Fatalf("status %d run %s", res.status, res.body)
		}
	})
	t.Run("unknown run", func(t *testing.T) {
		res := e.get(t, "/api/runs/01NOPE")
		if body := res.json(t); res.status != 404 || body["error"] != `run "01NOPE" not found` {
			t.Fatalf("status %d body %s", res.status, res.body)
		}
	})
}

func TestAPIRouting(t *testing.T) {
	e := newEnv(t, apiFlows, envOptions{})
	tests := []struct {
		name, method, target string
		wantStatus           int
		wantAllow            string
	}{
		{"unknown endpoint", "GET", "/api/nope", 404, ""},
		{"wrong method", "DELETE", "/api/flows", 405, "GET"},
		{"wrong method on a parameter route", "PUT", "/api/flows/count/static", 405, "GET, DELETE"},
		{"trailing slash", "GET", "/api/flows/", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, tt.method, tt.target, "", nil)
			body := res.json(t)
			if res.status != tt.wantStatus || res.header.Get("Allow") != tt.wantAllow {
				t.Fatalf("status %d allow %q body %s", res.status, res.header.Get("Allow"), res.body)
			}
			if tt.wantStatus >= 400 && body["code"] != json.Number(fmt.Sprint(tt.wantStatus)) {
				t.Errorf("body %s", res.body)
			}
		})
	}
}
