package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
)

// webhookFlows exercise every response mode.
var webhookFlows = map[string]string{
	// echo answers with the trigger item itself.
	"echo.json": `{"nodes": [
		{"name": "Webhook", "type": "webhook", "parameters": {"path": "echo/:id", "httpMethod": ["GET", "POST", "PUT"], "responseMode": "lastNode"}},
		{"name": "Done", "type": "noOp"}],
	 "connections": {"Webhook": ["Done"]}}`,
	"orders.json": `{"nodes": [
		{"name": "Hook", "type": "webhook", "parameters": {"path": "orders/:id", "httpMethod": "POST"}},
		{"name": "Record", "type": "code", "parameters": {"return": {"id": "{{ $json.params.id }}", "mode": "{{ $run.mode }}"}}}],
	 "connections": {"Hook": ["Record"]}}`,
	"all.json": `{"nodes": [
		{"name": "Webhook", "type": "webhook", "parameters": {"path": "all", "responseMode": "lastNode", "responseData": "allEntries"}},
		{"name": "Two", "type": "code", "parameters": {"return": "{{ [{n: 1}, {n: 2}] }}"}}],
	 "connections": {"Webhook": ["Two"]}}`,
	"nodata.json": `{"nodes": [
		{"name": "Webhook", "type": "webhook", "parameters": {"path": "nodata", "responseMode": "lastNode", "responseData": "noData",
			"responseCode": 202, "responseHeaders": {"X-Flow": "nodata"}}},
		{"name": "One", "type": "code", "parameters": {"return": {"n": 1}}}],
	 "connections": {"Webhook": ["One"]}}`,
	"empty.json": `{"nodes": [
		{"name": "Webhook", "type": "webhook", "parameters": {"path": "empty", "responseMode": "lastNode"}},
		{"name": "Nothing", "type": "code", "parameters": {"return": null}}],
	 "connections": {"Webhook": ["Nothing"]}}`,
	"custom.json": `{"nodes": [
		{"name": "Webhook", "type": "webhook", "parameters": {"path": "custom", "responseCode": 201,
			"responseHeaders": {"X-Custom": "yes", "Content-Type": "application/vnd.flowd+json"}}}]}`,
	"fail.json": `{"nodes": [
		{"name": "Webhook", "type": "webhook", "parameters": {"path": "fail", "responseMode": "lastNode",
			"responseHeaders": {"X-Custom": "yes"}}},
		{"name": "Boom", "type": "code", "parameters": {"code": ["fail('nope')"]}}],
	 "connections": {"Webhook": ["Boom"]}}`,
}

func TestWebhookOnReceived(t *testing.T) {
	e := newEnv(t, webhookFlows, envOptions{})
	res := e.postJSON(t, "/webhook/orders/42", `{"qty": 3}`)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d type %q body %s", res.status, res.header.Get("Content-Type"), res.body)
	}
	body := res.json(t)
	id, _ := body["runId"].(string)
	if body["message"] != "Workflow was started" || len(id) != 26 || res.header.Get(runIDHeader) != id {
		t.Fatalf("body %v header %q", body, res.header.Get(runIDHeader))
	}
	// The answer comes only once the run is stored, so it survives a crash right after.
	e.store.mu.Lock()
	_, stored := e.store.runs[id]
	e.store.mu.Unlock()
	if !stored {
		t.Fatal("onReceived answered before the run was recorded")
	}
	run := e.store.waitRun(t, id)
	if run.FlowID != "orders" || run.Mode != "webhook" || run.Trigger != "Hook" || run.Status != engine.StatusSuccess {
		t.Fatalf("run %+v", run)
	}
	out := run.Nodes[len(run.Nodes)-1].Output[0][0]
	if out["id"] != "42" || out["mode"] != "webhook" {
		t.Errorf("output %v", out)
	}
	in := run.Nodes[0].Input[0]
	if in["body"].(map[string]any)["qty"] != int64(3) {
		t.Errorf("trigger item %v", in)
	}
}

func TestWebhookOnReceivedUnrecordableRun(t *testing.T) {
	e := newEnv(t, webhookFlows, envOptions{})
	e.store.mu.Lock()
	e.store.failCreate = errors.New("disk full")
	e.store.mu.Unlock()
	res := e.postJSON(t, "/webhook/orders/42", `{}`)
	if res.status != http.StatusInternalServerError || !strings.Contains(string(res.body), "disk full") {
		t.Fatalf("status %d body %s", res.status, res.body)
	}
}

func TestWebhookItem(t *testing.T) {
	e := newEnv(t, webhookFlows, envOptions{})
	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        string
		header      []string
		want        map[string]any // keys of the item to compare
	}{
		{
			name: "path params and query", method: "GET", target: "/webhook/echo/a%20b?x=1&y=a&y=b&z=",
			want: map[string]any{
				"params": map[string]any{"id": "a b"},
				"query":  map[string]any{"x": "1", "y": []any{"a", "b"}, "z": ""},
				"body":   map[string]any{},
			},
		},
		{
			name: "trailing slash", method: "GET", target: "/webhook/echo/7/",
			want: map[string]any{"params": map[string]any{"id": "7"}},
		},
		{
			name: "JSON body with numbers", method: "POST", target: "/webhook/echo/1", contentType: "application/json; charset=utf-8",
			body: `{"n": 1, "f": 1.5, "big": 1e400, "list": [1, "a", null], "nested": {"ok": true}}`,
			want: map[string]any{"body": map[string]any{
				"n": int64(1), "f": 1.5, "big": json.Number("1e400"), "list": []any{int64(1), "a", nil}, "nested": map[string]any{"ok": true},
			}},
		},
		{
			name: "JSON body that is not an object", method: "PUT", target: "/webhook/echo/1", contentType: "application/json",
			body: `[1, 2]`, want: map[string]any{"body": []any{int64(1), int64(2)}},
		},
		{
			name: "vendor JSON type", method: "POST", target: "/webhook/echo/1", contentType: "application/vnd.api+json",
			body: `{"a": "b"}`, want: map[string]any{"body": map[string]any{"a": "b"}},
		},
		{
			name: "empty JSON body", method: "POST", target: "/webhook/echo/1", contentType: "application/json",
			want: map[string]any{"body": map[string]any{}},
		},
		{
			name: "form body", method: "POST", target: "/webhook/echo/1", contentType: "application/x-www-form-urlencoded",
			body: "name=Ada+L&tag=a&tag=b", want: map[string]any{"body": map[string]any{"name": "Ada L", "tag": []any{"a", "b"}}},
		},
		{
			name: "text body", method: "POST", target: "/webhook/echo/1", contentType: "text/plain",
			body: "hello\nworld", want: map[string]any{"body": "hello\nworld"},
		},
		{
			name: "body without a type", method: "POST", target: "/webhook/echo/1",
			body: "raw", want: map[string]any{"body": "raw"},
		},
		{
			name: "headers", method: "GET", target: "/webhook/echo/1",
			header: []string{"X-Single", "one", "X-Multi", "a", "X-Multi", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			res := e.do(t, tt.method, tt.target, tt.contentType, body, tt.header...)
			if res.status != http.StatusOK {
				t.Fatalf("status %d body %s", res.status, res.body)
			}
			run := e.store.waitRun(t, res.header.Get(runIDHeader))
			item := run.Nodes[0].Input[0]
			for k, want := range tt.want {
				if !reflect.DeepEqual(item[k], want) {
					t.Errorf("%s = %#v, want %#v", k, item[k], want)
				}
			}
			headers := item["headers"].(map[string]any)
			if headers["host"] != strings.TrimPrefix(e.url, "http://") {
				t.Errorf("host header %v", headers["host"])
			}
			if tt.header != nil && (headers["x-single"] != "one" || !reflect.DeepEqual(headers["x-multi"], []any{"a", "b"})) {
				t.Errorf("headers %v", headers)
			}
			// lastNode firstEntryJson: the noOp's first item is the trigger item.
			echoed := res.json(t)
			if echoed["params"].(map[string]any)["id"] != item["params"].(map[string]any)["id"] {
				t.Errorf("response %s", res.body)
			}
		})
	}
}

func TestWebhookLastNode(t *testing.T) {
	e := newEnv(t, webhookFlows, envOptions{})
	tests := []struct {
		name       string
		target     string
		wantStatus int
		wantBody   string // exact body, trailing newline trimmed
		wantHeader [2]string
	}{
		{"first entry", "/webhook/echo/9?q=1", 200, "", [2]string{"Content-Type", "application/json"}},
		{"all entries", "/webhook/all", 200, `[{"n":1},{"n":2}]`, [2]string{"Content-Type", "application/json"}},
		{"no data, custom status and header", "/webhook/nodata", 202, "", [2]string{"X-Flow", "nodata"}},
		{"last node emitted nothing", "/webhook/empty", 200, `{}`, [2]string{"Content-Type", "application/json"}},
		{"custom status and headers on received", "/webhook/custom", 201, "", [2]string{"Content-Type", "application/vnd.flowd+json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.get(t, tt.target)
			if res.status != tt.wantStatus || res.header.Get(tt.wantHeader[0]) != tt.wantHeader[1] {
				t.Fatalf("status %d headers %v body %s", res.status, res.header, res.body)
			}
			id := res.header.Get(runIDHeader)
			run := e.store.waitRun(t, id)
			if run.Status != engine.StatusSuccess {
				t.Fatalf("run %+v", run)
			}
			got := strings.TrimSuffix(string(res.body), "\n")
			switch tt.name {
			case "first entry":
				item := res.json(t)
				if item["query"].(map[string]any)["q"] != "1" {
					t.Errorf("body %s", res.body)
				}
			case "no data, custom status and header":
				if len(res.body) != 0 || res.header.Get("Content-Type") != "" {
					t.Errorf("body %q type %q", res.body, res.header.Get("Content-Type"))
				}
			case "custom status and headers on received":
				body := res.json(t)
				if body["runId"] != id || res.header.Get("X-Custom") != "yes" {
					t.Errorf("body %s headers %v", res.body, res.header)
				}
			default:
				if got != tt.wantBody {
					t.Errorf("body %s, want %s", got, tt.wantBody)
				}
			}
		})
	}
}

func TestWebhookFailedRun(t *testing.T) {
	e := newEnv(t, webhookFlows, envOptions{})
	res := e.get(t, "/webhook/fail")
	if res.status != http.StatusInternalServerError || res.header.Get("X-Custom") != "" {
		t.Fatalf("status %d headers %v body %s", res.status, res.header, res.body)
	}
	body := res.json(t)
	id, _ := body["runId"].(string)
	if !strings.Contains(fmt.Sprint(body["error"]), "nope") || body["code"] != json.Number("500") || id == "" {
		t.Fatalf("body %v", body)
	}
	run := e.store.waitRun(t, id)
	if run.Status != engine.StatusError || run.ErrorNode != "Boom" || body["error"] != run.Error {
		t.Errorf("run %+v", run)
	}
}

func TestWebhookErrors(t *testing.T) {
	e := newEnv(t, webhookFlows, envOptions{maxBody: 64})
	big := strings.Repeat("x", 100)
	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        io.Reader
		wantStatus  int
		wantError   string
		wantAllow   string
	}{
		{"unknown path", "GET", "/webhook/nope", "", nil, 404, `webhook "GET /webhook/nope" is not registered`, ""},
		{"missing parameter", "GET", "/webhook/echo", "", nil, 404, "is not registered", ""},
		{"bare prefix", "GET", "/webhook/", "", nil, 404, "", ""},
		{"wrong method", "DELETE", "/webhook/echo/1", "", nil, 405, "webhook /webhook/echo/1 does not accept DELETE; it accepts GET, POST, PUT", "GET, POST, PUT"},
		{"body over the limit", "POST", "/webhook/echo/1", "text/plain", strings.NewReader(big), 413, "request body is larger than 64 bytes", ""},
		{"chunked body over the limit", "POST", "/webhook/echo/1", "text/plain", io.MultiReader(strings.NewReader(big)), 413, "larger than 64 bytes", ""},
		{"malformed JSON", "POST", "/webhook/echo/1", "application/json", strings.NewReader(`{"a":`), 400, "malformed JSON body", ""},
		{"two JSON values", "POST", "/webhook/echo/1", "application/json", strings.NewReader(`{} {}`), 400, "malformed JSON body: more than one JSON value", ""},
		{"malformed form", "POST", "/webhook/echo/1", "application/x-www-form-urlencoded", strings.NewReader(`a=%zz`), 400, "malformed form body", ""},
		{"malformed content type", "POST", "/webhook/echo/1", "text/", strings.NewReader(`x`), 400, "malformed Content-Type", ""},
		{"multipart", "POST", "/webhook/echo/1", "multipart/form-data; boundary=x", strings.NewReader("--x--"), 415, "multipart/form-data bodies are not supported", ""},
		{"binary", "POST", "/webhook/echo/1", "application/octet-stream", strings.NewReader("\xff\xfe"), 415, "not UTF-8 text", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, tt.method, tt.target, tt.contentType, tt.body)
			body := res.json(t)
			if res.status != tt.wantStatus || body["code"] != json.Number(fmt.Sprint(tt.wantStatus)) ||
				!strings.Contains(fmt.Sprint(body["error"]), tt.wantError) || res.header.Get("Allow") != tt.wantAllow {
				t.Fatalf("status %d allow %q body %s", res.status, res.header.Get("Allow"), res.body)
			}
			if res.header.Get(runIDHeader) != "" {
				t.Errorf("a refused request started run %s", res.header.Get(runIDHeader))
			}
		})
	}
	runs, _ := e.store.ListRuns(context.Background(), engine.RunFilter{})
	if len(runs) != 0 {
		t.Errorf("%d runs started by refused requests", len(runs))
	}
}

func TestLastExecutionSkipsRechecks(t *testing.T) {
	run := &engine.Run{Nodes: []engine.NodeRun{{Node: "a"}, {Node: "b"}, {Node: "a", Recheck: true}}}
	if got := lastExecution(run); got == nil || got.Node != "b" {
		t.Fatalf("last execution %+v", got)
	}
	if lastExecution(&engine.Run{}) != nil {
		t.Fatal("a run without nodes has no last execution")
	}
}

// panicFlows is a FlowSource that panics, to test the recoverer.
type panicFlows struct{}

func (panicFlows) Current() *FlowSet { panic(errors.New("flow source broke")) }
