package web

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/flowd/flowd/engine"
)

// uiFlows are the flows the UI tests serve: a token-like flow that keeps a secret in static
// data and branches on it, and a flow that always fails.
var uiFlows = map[string]string{
	"token.json": `{"id": "token", "name": "Token <flow>",
	 "nodes": [
		{"name": "Webhook", "type": "webhook", "position": [0, 0], "parameters": {"path": "token", "httpMethod": "POST", "responseMode": "lastNode"}},
		{"name": "Every minute", "type": "scheduleTrigger", "position": [0, 200], "parameters": {"interval": "1m"}},
		{"name": "Valid?", "type": "if", "position": [240, 0], "parameters": {"condition": "{{ $static.accessToken != nil }}"}},
		{"name": "Fetch", "type": "code", "position": [480, 100], "parameters": {
			"code": ["$static.accessToken = 'sekrit-' + 'abc123'", "$static.count = ($static.count ?? 0) + 1"],
			"return": {"accessToken": "{{ $static.accessToken }}", "fresh": true}}},
		{"name": "Use", "type": "noOp", "position": [480, -100]}],
	 "connections": {"Webhook": ["Valid?"], "Every minute": ["Valid?"], "Valid?": {"true": ["Use"], "false": ["Fetch"]}}}`,
	"broken.json": `{"id": "broken", "name": "Always fails",
	 "nodes": [
		{"name": "Start", "type": "webhook", "parameters": {"path": "broken", "httpMethod": "POST"}},
		{"name": "Boom", "type": "code", "parameters": {"code": ["fail('the API said no')"]}}],
	 "connections": {"Start": ["Boom"]}}`,
}

const uiSecret = "sekrit-abc123"

// page fetches a UI page as a browser would and parses it.
func (e *env) page(t *testing.T, target string, wantStatus int) (*html.Node, *response) {
	t.Helper()
	res := e.do(t, http.MethodGet, target, "", nil, "Accept", "text/html")
	if res.status != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", target, res.status, wantStatus, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("GET %s: content type %q", target, ct)
	}
	doc, err := html.Parse(bytes.NewReader(res.body))
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return doc, res
}

// findAll returns the elements for which match is true, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

// byAttr matches elements of the tag ("" for any) whose attribute key is val ("" for any value).
func byAttr(tag, key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		if tag != "" && n.Data != tag {
			return false
		}
		for _, a := range n.Attr {
			if a.Key == key && (val == "" || a.Val == val) {
				return true
			}
		}
		return false
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// one returns the only element matching, failing the test otherwise.
func one(t *testing.T, n *html.Node, what string, match func(*html.Node) bool) *html.Node {
	t.Helper()
	all := findAll(n, match)
	if len(all) != 1 {
		t.Fatalf("%d elements for %s, want 1", len(all), what)
	}
	return all[0]
}

// runWebhook calls a webhook and waits for its run to be recorded as finished.
func (e *env) runWebhook(t *testing.T, path string) *engine.Run {
	t.Helper()
	res := e.postJSON(t, "/webhook/"+path, `{}`)
	id := res.header.Get(runIDHeader)
	if id == "" {
		t.Fatalf("webhook %s: no run id; status %d %s", path, res.status, res.body)
	}
	return e.store.waitRun(t, id)
}

func TestUIFlowsPage(t *testing.T) {
	next := time.Now().Add(90 * time.Second)
	e := newEnv(t, uiFlows, envOptions{schedules: schedulesFunc(func(flow, trigger string) (time.Time, bool) {
		return next, flow == "token" && trigger == "Every minute"
	})})
	e.runWebhook(t, "token")
	failed := e.runWebhook(t, "broken")

	doc, res := e.page(t, "/", http.StatusOK)
	for k, want := range map[string]string{
		"Content-Security-Policy": contentSecurityPolicy, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
	} {
		if got := res.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	rows := findAll(doc, byAttr("tr", "data-flow-id", ""))
	var ids []string
	for _, r := range rows {
		ids = append(ids, attr(r, "data-flow-id"))
	}
	if !slices.Equal(ids, []string{"broken", "token"}) {
		t.Fatalf("flow rows %v", ids)
	}
	broken, token := text(rows[0]), text(rows[1])
	host := strings.TrimPrefix(e.url, "http://")
	for _, want := range []string{"Token <flow>", "flows/token.json", "POST", "http://" + host + "/webhook/token", "every 1m0s", "next", "success", "Run now"} {
		if !strings.Contains(token, want) {
			t.Errorf("token row %q lacks %q", token, want)
		}
	}
	if !strings.Contains(broken, "error") || !strings.Contains(broken, "1 failure") {
		t.Errorf("broken row %q: want its error and 1 failure", broken)
	}
	one(t, rows[1], "next fire time", byAttr("time", "datetime", next.UTC().Format(time.RFC3339Nano)))
	fail := one(t, rows[0], "failures link", byAttr("a", "class", "failures"))
	if attr(fail, "href") != "/runs?flow=broken&status=error" {
		t.Errorf("failures link %q", attr(fail, "href"))
	}
	last := one(t, rows[0], "last run link", byAttr("a", "href", "/runs/"+failed.ID))
	if !strings.Contains(text(last), "error") {
		t.Errorf("last run %q", text(last))
	}
	form := one(t, rows[1], "run now form", byAttr("form", "action", "/flows/token/run"))
	if attr(form, "method") != "post" {
		t.Errorf("run now form method %q", attr(form, "method"))
	}
	if strings.Contains(string(res.body), "<flow>") {
		t.Error("a flow name went out unescaped")
	}
}

func TestUIFlowPageMasksStaticDataUntilRevealed(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	e.runWebhook(t, "token")

	doc, res := e.page(t, "/flows/token", http.StatusOK)
	if bytes.Contains(res.body, []byte(uiSecret)) {
		t.Fatalf("the token is on the flow page unmasked")
	}
	static := one(t, doc, "static data", byAttr("div", "data-static", ""))
	if !strings.Contains(text(static), "count") || !strings.Contains(text(static), maskText) {
		t.Errorf("static data %q: want the count and a masked token", text(static))
	}
	graph := one(t, doc, "graph", byAttr("svg", "class", ""))
	var nodes []string
	for _, n := range findAll(graph, byAttr("", "data-node", "")) {
		nodes = append(nodes, attr(n, "data-node"))
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"Every minute", "Fetch", "Use", "Valid?", "Webhook"}) {
		t.Errorf("graph nodes %v", nodes)
	}
	if rows := findAll(doc, byAttr("tr", "data-run-id", "")); len(rows) != 1 {
		t.Errorf("%d recent runs, want 1", len(rows))
	}

	reveal := one(t, doc, "reveal toggle", byAttr("a", "data-reveal", ""))
	if attr(reveal, "aria-pressed") != "false" {
		t.Errorf("reveal toggle pressed before revealing")
	}
	doc, res = e.page(t, strings.TrimSuffix(attr(reveal, "href"), "#static"), http.StatusOK)
	if !bytes.Contains(res.body, []byte(uiSecret)) {
		t.Fatalf("revealed page lacks the token")
	}
	hide := one(t, doc, "hide toggle", byAttr("a", "data-reveal", ""))
	if attr(hide, "aria-pressed") != "true" || strings.Contains(attr(hide, "href"), "reveal") {
		t.Errorf("hide toggle %v", hide.Attr)
	}

	e.page(t, "/flows/nope", http.StatusNotFound)
}

func TestUIResetStaticData(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	e.runWebhook(t, "token")
	static := func() map[string]any {
		m, err := e.store.Static(context.Background(), "token")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	doc, _ := e.page(t, "/flows/token/reset", http.StatusOK)
	form := one(t, doc, "confirm form", byAttr("form", "action", "/flows/token/reset"))
	if attr(form, "method") != "post" || !strings.Contains(text(doc), "2 keys") {
		t.Fatalf("confirm page: form %v, text %q", form.Attr, text(doc))
	}

	// A form posted from another site is refused and changes nothing.
	res := e.do(t, http.MethodPost, "/flows/token/reset", "application/x-www-form-urlencoded", nil,
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if res.status != http.StatusForbidden || len(static()) != 2 {
		t.Fatalf("cross-site reset: status %d, static %v", res.status, static())
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/flows/token/reset", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/flows/token?reset=1" {
		t.Fatalf("reset: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(static()) != 0 {
		t.Fatalf("static data after reset: %v", static())
	}
	doc, _ = e.page(t, "/flows/token?reset=1", http.StatusOK)
	if !strings.Contains(text(doc), "Static data was reset") {
		t.Error("no notice after the reset")
	}
}

func TestUIRunNow(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(target string, form url.Values) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	resp := post("/flows/token/run", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/runs/") {
		t.Fatalf("run now: status %d location %q", resp.StatusCode, loc)
	}
	run := e.store.waitRun(t, strings.TrimPrefix(loc, "/runs/"))
	if run.Mode != "manual" || run.Status != engine.StatusSuccess || run.FlowID != "token" {
		t.Errorf("run %+v", run)
	}

	resp = post("/flows/token/run", url.Values{"trigger": {"Every minute"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("run now with a trigger: status %d", resp.StatusCode)
	}
	if run := e.store.waitRun(t, strings.TrimPrefix(resp.Header.Get("Location"), "/runs/")); run.Trigger != "Every minute" {
		t.Errorf("trigger %q", run.Trigger)
	}
	if resp := post("/flows/token/run", url.Values{"trigger": {"Use"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("run from a node that is no trigger: status %d", resp.StatusCode)
	}
	if resp := post("/flows/nope/run", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("run of an unknown flow: status %d", resp.StatusCode)
	}
}

// putRuns stores n finished runs of flow, one a millisecond apart from start, with ids that
// sort in that order; every third fails.
func putRuns(e *env, flow string, n int, start time.Time) []*engine.Run {
	var runs []*engine.Run
	for i := range n {
		at := start.Add(time.Duration(i) * time.Millisecond)
		r := &engine.Run{
			ID: engine.FirstRunIDAt(at)[:16] + fmt.Sprintf("%010d", i), FlowID: flow, FlowName: flow, Trigger: "Webhook",
			Mode: "webhook", Status: engine.StatusSuccess, StartedAt: at, FinishedAt: at.Add(1500 * time.Microsecond),
		}
		if i%3 == 0 {
			r.Status, r.Error, r.ErrorNode = engine.StatusError, "boom", "Boom"
		}
		e.store.put(r)
		runs = append(runs, r)
	}
	return runs
}

func TestUIRunsPageFiltersAndPages(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	start := time.Now().Add(-time.Hour)
	tokenRuns := putRuns(e, "token", 70, start)
	putRuns(e, "broken", 5, start.Add(time.Minute))

	ids := func(doc *html.Node) []string {
		var out []string
		for _, r := range findAll(doc, byAttr("tr", "data-run-id", "")) {
			out = append(out, attr(r, "data-run-id"))
		}
		return out
	}
	newestFirst := func(runs []*engine.Run, keep func(*engine.Run) bool) []string {
		var out []string
		for i := len(runs) - 1; i >= 0; i-- {
			if keep(runs[i]) {
				out = append(out, runs[i].ID)
			}
		}
		return out
	}

	// Flow filter, two pages.
	doc, _ := e.page(t, "/runs?flow=token", http.StatusOK)
	want := newestFirst(tokenRuns, func(*engine.Run) bool { return true })
	if got := ids(doc); !slices.Equal(got, want[:runsPageSize]) {
		t.Fatalf("first page: %d runs %v…", len(got), got[:min(3, len(got))])
	}
	if m := one(t, doc, "main", byAttr("main", "id", "main")); attr(m, "data-live") != "1" || attr(m, "data-flow") != "token" {
		t.Errorf("first page is not live for its flow: %v", m.Attr)
	}
	next := one(t, doc, "older link", byAttr("a", "data-next", ""))
	doc, _ = e.page(t, attr(next, "href"), http.StatusOK)
	if got := ids(doc); !slices.Equal(got, want[runsPageSize:]) {
		t.Fatalf("second page: %v, want %v", got, want[runsPageSize:])
	}
	if len(findAll(doc, byAttr("a", "data-next", ""))) != 0 {
		t.Error("an older link on the last page")
	}
	if m := one(t, doc, "main", byAttr("main", "id", "main")); attr(m, "data-live") != "" {
		t.Error("an older page updates live")
	}
	if sel := one(t, doc, "selected flow", byAttr("option", "selected", "")); attr(sel, "value") != "token" {
		t.Errorf("selected option %v", sel.Attr)
	}

	// Status filter across flows, with the error shown under the run.
	doc, _ = e.page(t, "/runs?status=error", http.StatusOK)
	wantErr := newestFirst(tokenRuns, func(r *engine.Run) bool { return r.Status == engine.StatusError })
	got := ids(doc)
	if len(got) != 2+len(wantErr) || got[0] == wantErr[0] {
		t.Fatalf("status filter: %d runs", len(got))
	}
	if errs := findAll(doc, byAttr("tr", "data-error-for", "")); len(errs) != len(got) || !strings.Contains(text(errs[0]), "Boom: boom") {
		t.Errorf("%d error rows for %d failed runs", len(errs), len(got))
	}

	doc, _ = e.page(t, "/runs?status=exploded", http.StatusBadRequest)
	if !strings.Contains(text(doc), "Status must be one of") {
		t.Errorf("bad status page: %q", text(doc))
	}
	doc, _ = e.page(t, "/runs?flow=none", http.StatusOK)
	if len(ids(doc)) != 0 || !strings.Contains(text(doc), "No runs match these filters") {
		t.Errorf("empty filter page: %q", text(doc))
	}
}

func TestUIRunPage(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	run := e.runWebhook(t, "token") // first run: the token is fetched

	doc, res := e.page(t, "/runs/"+run.ID, http.StatusOK)
	if bytes.Contains(res.body, []byte(uiSecret)) {
		t.Fatal("the token is on the run page unmasked")
	}
	var executed []string
	for _, a := range findAll(doc, byAttr("a", "data-seq", "")) {
		executed = append(executed, text(a))
	}
	if len(executed) != 3 || !strings.HasPrefix(executed[0], "Webhook") || !strings.HasPrefix(executed[2], "Fetch") {
		t.Fatalf("executions %q", executed)
	}
	// By default the last execution is selected: its output carries the masked token.
	detail := one(t, doc, "node detail", byAttr("section", "data-node-detail", ""))
	if attr(detail, "data-node-detail") != "Fetch" {
		t.Errorf("selected %q", attr(detail, "data-node-detail"))
	}
	out := one(t, detail, "output", byAttr("div", "data-io", "output"))
	if s := text(out); !strings.Contains(s, "fresh") || !strings.Contains(s, maskText) {
		t.Errorf("output %q", s)
	}
	changes := findAll(doc, byAttr("tr", "data-static-key", ""))
	if len(changes) != 2 {
		t.Fatalf("%d static changes, want 2", len(changes))
	}
	for _, c := range changes {
		if attr(c, "data-static-key") == "accessToken" && !strings.Contains(text(c), maskText) {
			t.Errorf("token change %q not masked", text(c))
		}
	}
	if raw := one(t, doc, "raw link", byAttr("a", "data-raw", "")); attr(raw, "href") != "/api/runs/"+run.ID {
		t.Errorf("raw link %q", attr(raw, "href"))
	}
	if len(findAll(doc, byAttr("svg", "class", ""))) < 2 {
		t.Error("no graph and timeline")
	}

	// Selecting the If node shows its executed branch.
	doc, _ = e.page(t, "/runs/"+run.ID+"?seq=1", http.StatusOK)
	detail = one(t, doc, "node detail", byAttr("section", "data-node-detail", ""))
	if attr(detail, "data-node-detail") != "Valid?" || !strings.Contains(text(detail), "Output false 1 item") ||
		!strings.Contains(text(detail), "Output true 0 items") {
		t.Errorf("If detail %q", text(detail))
	}

	// Revealed, the token shows.
	_, res = e.page(t, "/runs/"+run.ID+"?reveal=1", http.StatusOK)
	if !bytes.Contains(res.body, []byte(uiSecret)) {
		t.Error("revealed run page lacks the token")
	}

	e.page(t, "/runs/01NOSUCHRUN0000000000000000", http.StatusNotFound)
}

func TestUIRunPageShowsTheError(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	run := e.runWebhook(t, "broken")
	doc, _ := e.page(t, "/runs/"+run.ID, http.StatusOK)
	banner := one(t, doc, "run error", byAttr("div", "data-run-error", ""))
	if s := text(banner); !strings.Contains(s, "Boom") || !strings.Contains(s, "the API said no") {
		t.Errorf("error banner %q", s)
	}
	detail := one(t, doc, "node detail", byAttr("section", "data-node-detail", ""))
	if attr(detail, "data-node-detail") != "Boom" || !strings.Contains(text(detail), "the API said no") {
		t.Errorf("failed node not selected: %q", text(detail))
	}
}

// bigRun is a finished run whose one node had n items in and out.
func bigRun(flow string, n int) *engine.Run {
	items := make([]engine.Item, n)
	for i := range items {
		items[i] = engine.Item{"i": int64(i), "name": "item " + strconv.Itoa(i), "tags": []any{"a", "b"}}
	}
	at := time.Now().Add(-time.Minute)
	return &engine.Run{
		ID: engine.NewRunID(at), FlowID: flow, Trigger: "Webhook", Mode: "webhook", Status: engine.StatusSuccess,
		StartedAt: at, FinishedAt: at.Add(time.Millisecond),
		Nodes: []engine.NodeRun{{
			Seq: 0, Node: "Use", Type: "noOp", Status: engine.StatusSuccess, StartedAt: at, DurationMicros: 900, Tries: 1,
			Input: items, Output: [][]engine.Item{items}, Ports: []string{"main"}, InputCount: n, OutputCounts: []int{n},
		}},
	}
}

func TestUIRunPagePagesItems(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	run := bigRun("token", 1000)
	e.store.put(run)

	items := func(doc *html.Node, io string) []string {
		col := one(t, doc, io, byAttr("div", "data-io", io))
		var out []string
		for _, li := range findAll(col, func(n *html.Node) bool {
			return n.Data == "li" && n.Parent.Data == "ol" && attr(n.Parent, "class") == "items"
		}) {
			out = append(out, text(li))
		}
		return out
	}
	doc, res := e.page(t, "/runs/"+run.ID, http.StatusOK)
	if in := items(doc, "input"); len(in) != itemsPerPage || !strings.Contains(in[0], `"item 0"`) {
		t.Fatalf("first input page: %d items, first %q", len(in), in[0])
	}
	if len(res.body) > 200<<10 {
		t.Errorf("a page with 1,000 items is %d bytes: items are not paged", len(res.body))
	}
	// Walk the output to its last page.
	target := "/runs/" + run.ID
	for page := 1; ; page++ {
		doc, _ = e.page(t, target, http.StatusOK)
		col := one(t, doc, "output", byAttr("div", "data-io", "output"))
		next := findAll(col, byAttr("a", "rel", "next"))
		if len(next) == 0 {
			out := items(doc, "output")
			if page != 50 || len(out) != itemsPerPage || !strings.Contains(out[len(out)-1], `"item 999"`) {
				t.Fatalf("last output page %d: %d items, last %q", page, len(out), out[len(out)-1])
			}
			// Paging the output leaves the input at its first page.
			if in := items(doc, "input"); !strings.Contains(in[0], `"item 0"`) {
				t.Errorf("input moved with the output: %q", in[0])
			}
			break
		}
		if page > 60 {
			t.Fatal("paging never ends")
		}
		target = strings.TrimSuffix(attr(next[0], "href"), "#node")
	}
}

func BenchmarkUIRunPage1000Items(b *testing.B) {
	e := newEnv(b, uiFlows, envOptions{})
	run := bigRun("token", 1000)
	e.store.put(run)
	req, _ := http.NewRequest(http.MethodGet, e.url+"/runs/"+run.ID, nil)
	for b.Loop() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
		res.Body.Close()
	}
}

func TestUINotFoundAndAssets(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	doc, _ := e.page(t, "/no/such/page", http.StatusNotFound)
	if !strings.Contains(text(doc), "There is no page at /no/such/page") {
		t.Errorf("404 page %q", text(doc))
	}
	// The API keeps answering JSON.
	if res := e.do(t, http.MethodGet, "/api/nope", "", nil, "Accept", "text/html"); res.header.Get("Content-Type") != "application/json" {
		t.Errorf("API 404 content type %q", res.header.Get("Content-Type"))
	}

	// Every asset the layout links is served, cacheable by its hash.
	_, page := e.page(t, "/", http.StatusOK)
	doc, _ = html.Parse(bytes.NewReader(page.body))
	var links []string
	for _, n := range findAll(doc, func(n *html.Node) bool { return n.Data == "link" || n.Data == "script" }) {
		links = append(links, attr(n, "href")+attr(n, "src"))
	}
	if len(links) < 4 {
		t.Fatalf("assets linked: %v", links)
	}
	for _, l := range links {
		if !strings.HasPrefix(l, "/assets/") {
			t.Errorf("asset from elsewhere: %q", l)
			continue
		}
		res := e.get(t, l)
		if res.status != 200 || len(res.body) == 0 || !strings.Contains(res.header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: status %d, %d bytes, cache %q", l, res.status, len(res.body), res.header.Get("Cache-Control"))
		}
		if res := e.do(t, http.MethodGet, l, "", nil, "If-None-Match", res.header.Get("ETag")); res.status != http.StatusNotModified {
			t.Errorf("%s again: status %d", l, res.status)
		}
	}
	e.page(t, "/assets/nope.js", http.StatusNotFound)
}

// schedulesFunc is a ScheduleInfo made of a function.
type schedulesFunc func(flow, trigger string) (time.Time, bool)

func (f schedulesFunc) NextFire(flow, trigger string) (time.Time, bool) { return f(flow, trigger) }

// sseEvent is one event read from a stream.
type sseEvent struct{ name, data string }

// readEvents reads events from an SSE stream into a channel until it ends.
func readEvents(t *testing.T, e *env, target string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+target, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sseEvent, 100)
	go func() {
		defer close(ch)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch, res
}

func TestUIEventStream(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	all, res := readEvents(t, e, "/events")
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	tokenOnly, _ := readEvents(t, e, "/events?flow=token")
	// Both streams are subscribed once the hub counts them.
	waitFor(t, func() bool { return e.events.subscribers.Load() == 2 })

	broken := e.runWebhook(t, "broken")
	token := e.runWebhook(t, "token")
	want := []string{
		fmt.Sprintf(`{"id":"%s","flowId":"broken","status":"running"}`, broken.ID),
		fmt.Sprintf(`{"id":"%s","flowId":"broken","status":"error"}`, broken.ID),
		fmt.Sprintf(`{"id":"%s","flowId":"token","status":"running"}`, token.ID),
		fmt.Sprintf(`{"id":"%s","flowId":"token","status":"success"}`, token.ID),
	}
	expect := func(ch <-chan sseEvent, want []string) {
		t.Helper()
		for _, w := range want {
			select {
			case ev := <-ch:
				if ev.name != "run" || ev.data != w {
					t.Fatalf("event %s %s, want run %s", ev.name, ev.data, w)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no event; want %s", w)
			}
		}
	}
	expect(all, want)
	expect(tokenOnly, want[2:])

	// Closing the streams ends them, so that shutdown need not wait for them.
	e.server.CloseStreams()
	for _, ch := range []<-chan sseEvent{all, tokenOnly} {
		select {
		case _, ok := <-ch:
			if ok {
				t.Fatal("an event after the streams were closed")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a stream stayed open after CloseStreams")
		}
	}
	if res := e.get(t, "/events"); res.status != http.StatusServiceUnavailable {
		t.Errorf("stream after close: status %d", res.status)
	}
}

func TestEventsTellASlowSubscriberToResync(t *testing.T) {
	ev := NewEvents()
	sub, ok := ev.subscribe("")
	if !ok {
		t.Fatal("subscribe failed")
	}
	for i := range subscriptionBuffer + 5 {
		ev.Publish(RunEvent{ID: strconv.Itoa(i), FlowID: "f"})
	}
	if len(sub.ch) != subscriptionBuffer || !sub.missed.Load() {
		t.Fatalf("queued %d, missed %v", len(sub.ch), sub.missed.Load())
	}
	ev.unsubscribe(sub)
	if ev.subscribers.Load() != 0 {
		t.Error("subscriber still counted")
	}
	ev.Close()
	if _, ok := ev.subscribe(""); ok {
		t.Error("subscribed after Close")
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUIRunPageListsAWindowOfManyExecutions(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	run := bigRun("token", 1)
	one0 := run.Nodes[0]
	run.Nodes = nil
	for i := range 1000 {
		nr := one0
		nr.Seq = i
		nr.Node = []string{"Valid?", "Use"}[i%2]
		run.Nodes = append(run.Nodes, nr)
	}
	e.store.put(run)

	doc, _ := e.page(t, "/runs/"+run.ID+"?seq=500", http.StatusOK)
	listed := findAll(doc, byAttr("a", "data-seq", ""))
	if len(listed) != maxListedExecutions {
		t.Fatalf("%d executions listed, want %d", len(listed), maxListedExecutions)
	}
	first, _ := strconv.Atoi(attr(listed[0], "data-seq"))
	last, _ := strconv.Atoi(attr(listed[len(listed)-1], "data-seq"))
	if first > 500 || last < 500 || last-first != maxListedExecutions-1 {
		t.Errorf("window %d–%d does not hold the selected execution 500", first, last)
	}
	before := one(t, doc, "hidden before", byAttr("p", "data-hidden-before", ""))
	after := one(t, doc, "hidden after", byAttr("p", "data-hidden-after", ""))
	if !strings.HasPrefix(text(before), strconv.Itoa(first)+" earlier") || !strings.HasPrefix(text(after), strconv.Itoa(999-last)+" later") {
		t.Errorf("hidden notes %q, %q for window %d–%d", text(before), text(after), first, last)
	}
	if detail := one(t, doc, "node detail", byAttr("section", "data-node-detail", "")); attr(detail, "data-node-detail") != "Valid?" {
		t.Errorf("selected %q", attr(detail, "data-node-detail"))
	}
}
