package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/flowd/flowd/engine"
)

// The UI is server-rendered HTML: every page reads without JavaScript, and a few KB of
// script add live updates. Templates, CSS and script are embedded in the binary; the pages
// make no request to any other host.

//go:embed templates/*.html assets/*
var uiFiles embed.FS

// Sizes of the UI's lists and pages.
const (
	runsPageSize = 50
	recentRuns   = 10
	itemsPerPage = 20
	// maxListedExecutions bounds the node executions a run page lists and draws.
	maxListedExecutions = 200
	countsWindow        = 24 * time.Hour
	uiQueryTimeout      = 10 * time.Second
)

// contentSecurityPolicy allows nothing inline and nothing from another host.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ui serves the HTML pages, their assets and the live event stream.
type ui struct {
	flows     FlowSource
	launcher  *launcher
	runs      engine.RunReader
	counter   engine.RunCounter // may be nil
	static    StaticStore
	schedules ScheduleInfo // may be nil
	events    *Events
	log       *slog.Logger
	now       func() time.Time
	csrf      *http.CrossOriginProtection

	pages  map[string]*template.Template
	assets map[string]asset
}

// asset is one embedded static file.
type asset struct {
	data        []byte
	contentType string
	hash        string // of data, for cache-busting URLs
}

func newUI(cfg Config, l *launcher) *ui {
	u := &ui{
		flows: cfg.Flows, launcher: l, runs: cfg.Runs, static: cfg.Static, schedules: cfg.Schedules,
		events: cfg.Events, log: cfg.Logger, now: time.Now, csrf: http.NewCrossOriginProtection(),
	}
	if c, ok := cfg.Runs.(engine.RunCounter); ok {
		u.counter = c
	}
	if u.events == nil {
		u.events = NewEvents()
	}
	u.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			renderError(w, r, u.log, http.StatusForbidden, "cross-site request refused: "+r.Method+" from another origin")
			return
		}
		u.errorPage(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site. Open the page in flowd and try again.")
	}))
	u.loadAssets()
	u.parseTemplates()
	return u
}

// loadAssets reads the embedded assets once. A missing or unreadable asset is a build
// mistake, so it panics at start-up rather than serving a broken page.
func (u *ui) loadAssets() {
	u.assets = map[string]asset{}
	entries, err := fs.ReadDir(uiFiles, "assets")
	if err != nil {
		panic(fmt.Sprintf("web: read embedded assets: %v", err))
	}
	for _, e := range entries {
		data, err := fs.ReadFile(uiFiles, "assets/"+e.Name())
		if err != nil {
			panic(fmt.Sprintf("web: read embedded asset %s: %v", e.Name(), err))
		}
		sum := sha256.Sum256(data)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		u.assets[e.Name()] = asset{data: data, contentType: ct, hash: hex.EncodeToString(sum[:6])}
	}
}

// parseTemplates builds one template per page: the layout, the shared partials and the page.
func (u *ui) parseTemplates() {
	funcs := template.FuncMap{
		"asset": func(name string) (string, error) {
			a, ok := u.assets[name]
			if !ok {
				return "", fmt.Errorf("no asset %q", name)
			}
			return "/assets/" + name + "?v=" + a.hash, nil
		},
		"rel":      func(t time.Time) string { return relativeTime(t, u.now()) },
		"exact":    exactTime,
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"dur":      formatDuration,
		"micros":   formatMicros,
		"runDur":   runDuration,
		"json":     func(v any, reveal bool) template.HTML { return jsonHTML(v, jsonViewOptions{Reveal: reveal}) },
		"count":    groupDigits,
		"plural":   countNoun,
		"pathEsc":  url.PathEscape,
		"queryEsc": url.QueryEscape,
		"shortID":  func(id string) string { return id[max(0, len(id)-8):] },
		"join":     strings.Join,
	}
	pages, err := fs.Glob(uiFiles, "templates/*.html")
	if err != nil {
		panic(fmt.Sprintf("web: list templates: %v", err))
	}
	u.pages = map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t := template.Must(template.New(name).Funcs(funcs).ParseFS(uiFiles, "templates/layout.html", "templates/partials.html", p))
		u.pages[name] = t
	}
}

func exactTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05.000 MST")
}

// runDuration is how long a run took, or a dash while it runs.
func runDuration(r runSummary) string {
	if r.FinishedAt.IsZero() {
		return "—"
	}
	return formatDuration(r.FinishedAt.Sub(r.StartedAt))
}

// page is what every page template gets.
type page struct {
	Title string
	Nav   string // "flows" or "runs": the current section
	// Live, when set, makes the page update itself from the event stream: the regions marked
	// data-region are fetched again when a run of LiveFlow (any flow when empty) or LiveRun
	// starts or ends.
	Live     bool
	LiveFlow string
	LiveRun  string
	Data     any
}

// render writes a page, buffered so a template error becomes a clean error page.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := u.pages[name]
	if !ok {
		u.internal(w, r, fmt.Errorf("no page template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		if name == "error" {
			// The error page itself failed: plain text is all that is left.
			u.log.Error("render error page", "error", err)
			http.Error(w, http.StatusText(status), status)
			return
		}
		u.internal(w, r, fmt.Errorf("render %s page: %w", name, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorView is the error page's data.
type errorView struct {
	Status  int
	Heading string
	Message string
}

// errorPage answers with the HTML error page.
func (u *ui) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	u.render(w, r, status, "error", page{Title: heading, Data: errorView{Status: status, Heading: heading, Message: msg}})
}

func (u *ui) internal(w http.ResponseWriter, r *http.Request, err error) {
	u.log.Error("UI request failed", "method", r.Method, "path", r.URL.Path, "request", middleware.GetReqID(r.Context()), "error", err)
	u.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		"flowd could not show this page: "+err.Error())
}

// baseHeaders sets the headers every response carries; a webhook's own response headers
// may still replace them.
func baseHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = sameOrigin
		next.ServeHTTP(w, r)
	})
}

// Header values set on every response, shared rather than allocated per request as
// Header.Set does: nothing changes a header's value slice in place (Add and Set replace it).
var (
	nosniff         = []string{"nosniff"}
	sameOrigin      = []string{"same-origin"}
	jsonContentType = []string{"application/json"}
)

// secureHeaders sets the headers every UI page carries on top of baseHeaders.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// unauthorized is the page a browser sees until it logs in.
func (u *ui) unauthorized(w http.ResponseWriter, r *http.Request) {
	secureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, http.StatusUnauthorized, "Log in to flowd",
			"This flowd asks for a user name and password, or its access token as the password.")
	})).ServeHTTP(w, r)
}

// wantsHTML tells whether an unmatched request came from a browser looking for a page, so
// that it gets the HTML 404 rather than the API's JSON one.
func wantsHTML(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/webhook/") {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// GET /assets/{name}
func (u *ui) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	a, ok := u.assets[name]
	if !ok {
		u.errorPage(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no asset %q.", name))
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", `"`+a.hash+`"`)
	if r.URL.Query().Get("v") == a.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if match := r.Header.Get("If-None-Match"); match == `"`+a.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.data)))
	_, _ = w.Write(a.data)
}

// context bounds the store queries of one page.
func (u *ui) context(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), uiQueryTimeout)
}

// flowRow is a flow on the flows page.
type flowRow struct {
	flowSummary
	Counts *engine.RunCounts // nil when unknown
}

// GET /
func (u *ui) flowsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := u.context(r)
	defer cancel()
	flows := u.flows.Current().Flows()
	rows := make([]flowRow, 0, len(flows))
	for _, f := range flows {
		row, err := u.flowRow(ctx, r, f)
		if err != nil {
			u.internal(w, r, err)
			return
		}
		rows = append(rows, row)
	}
	u.render(w, r, http.StatusOK, "flows", page{Title: "Flows", Nav: "flows", Live: true, Data: rows})
}

func (u *ui) flowRow(ctx context.Context, r *http.Request, f *engine.Flow) (flowRow, error) {
	s, err := summarizeFlow(ctx, r, f, u.runs, u.schedules)
	if err != nil {
		return flowRow{}, err
	}
	row := flowRow{flowSummary: s}
	if u.counter != nil {
		c, err := u.counter.CountRuns(ctx, f.ID, u.now().Add(-countsWindow))
		if err != nil {
			return row, fmt.Errorf("count runs of %s: %w", f.ID, err)
		}
		row.Counts = &c
	}
	return row, nil
}

// flowPageView is the flow page's data.
type flowPageView struct {
	flowRow
	Graph      template.HTML
	Static     map[string]any
	Reveal     bool
	RevealURL  string
	Definition any
	Runs       []runSummary
	Reset      bool // static data was just reset
}

// GET /flows/{id}
func (u *ui) flowPage(w http.ResponseWriter, r *http.Request) {
	f := u.flow(w, r)
	if f == nil {
		return
	}
	ctx, cancel := u.context(r)
	defer cancel()
	row, err := u.flowRow(ctx, r, f)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	static, err := u.static.Static(ctx, f.ID)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	runs, err := u.runs.ListRuns(ctx, engine.RunFilter{FlowID: f.ID, Limit: recentRuns})
	if err != nil {
		u.internal(w, r, fmt.Errorf("recent runs of %s: %w", f.ID, err))
		return
	}
	reveal := r.URL.Query().Get("reveal") == "1"
	v := flowPageView{
		flowRow: row,
		Graph:   renderGraph(f, graphOptions{}),
		Static:  static,
		Reveal:  reveal,
		Reset:   r.URL.Query().Get("reset") == "1",
		Runs:    summaries(runs),
	}
	v.RevealURL = withQuery(r.URL, "reveal", toggle(reveal), "reset", "")
	if len(f.Source) > 0 {
		if def, err := engine.DecodeJSON(f.Source); err == nil {
			v.Definition = def
		}
	}
	u.render(w, r, http.StatusOK, "flow", page{Title: f.Name, Nav: "flows", Live: true, LiveFlow: f.ID, Data: v})
}

func summaries(runs []engine.Run) []runSummary {
	out := make([]runSummary, len(runs))
	for i := range runs {
		out[i] = summarize(&runs[i])
	}
	return out
}

// toggle is the value of a reveal parameter that flips the current state.
func toggle(on bool) string {
	if on {
		return ""
	}
	return "1"
}

// withQuery returns u's path and query with the given parameters set (removed when empty).
func withQuery(u *url.URL, kv ...string) string {
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return u.Path
	}
	return u.Path + "?" + q.Encode()
}

// flow returns the flow named by the {id} URL parameter, or answers 404 and returns nil.
func (u *ui) flow(w http.ResponseWriter, r *http.Request) *engine.Flow {
	id := chi.URLParam(r, "id")
	f := u.flows.Current().Flow(id)
	if f == nil {
		u.errorPage(w, r, http.StatusNotFound, "Flow not found",
			fmt.Sprintf("No flow %q is loaded. It may have been renamed or removed from the flows folder.", id))
	}
	return f
}

// GET /flows/{id}/reset: the confirmation page.
func (u *ui) confirmReset(w http.ResponseWriter, r *http.Request) {
	f := u.flow(w, r)
	if f == nil {
		return
	}
	ctx, cancel := u.context(r)
	defer cancel()
	static, err := u.static.Static(ctx, f.ID)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "reset", page{Title: "Reset static data of " + f.Name, Nav: "flows",
		Data: map[string]any{"Flow": f, "Keys": len(static)}})
}

// POST /flows/{id}/reset
func (u *ui) resetStatic(w http.ResponseWriter, r *http.Request) {
	f := u.flow(w, r)
	if f == nil {
		return
	}
	ctx, cancel := u.context(r)
	defer cancel()
	if err := u.static.ResetStatic(ctx, f.ID); err != nil {
		u.internal(w, r, err)
		return
	}
	u.log.Info("static data reset from the UI", "flow", f.ID, "request", middleware.GetReqID(r.Context()))
	http.Redirect(w, r, "/flows/"+url.PathEscape(f.ID)+"?reset=1", http.StatusSeeOther)
}

// POST /flows/{id}/run: starts a manual run and, once it is recorded, shows it.
func (u *ui) runNow(w http.ResponseWriter, r *http.Request) {
	f := u.flow(w, r)
	if f == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read: "+err.Error())
		return
	}
	trigger := r.PostForm.Get("trigger")
	if len(f.Triggers) == 0 {
		u.errorPage(w, r, http.StatusBadRequest, "Cannot run", fmt.Sprintf("Flow %q has no trigger node.", f.ID))
		return
	}
	if trigger != "" {
		if n := f.Node(trigger); n == nil || !n.Type.Trigger {
			u.errorPage(w, r, http.StatusBadRequest, "Cannot run", fmt.Sprintf("Flow %q has no trigger node %q.", f.ID, trigger))
			return
		}
	}
	id := engine.NewRunID(u.now())
	started := make(chan struct{})
	done, err := u.launcher.start(f, engine.RunRequest{
		ID: id, Trigger: trigger, Mode: "manual",
		Started: func(*engine.Run) { close(started) },
	}, middleware.GetReqID(r.Context()))
	if err != nil {
		code, msg := startError(w, err)
		u.errorPage(w, r, code, "Cannot start a run now", msg+".")
		return
	}
	select {
	case <-started:
	case res := <-done:
		if res.err == nil {
			break
		}
		if code := runErrorStatus(w, res.err); code == http.StatusServiceUnavailable {
			u.errorPage(w, r, code, "The database cannot be written",
				"flowd starts no runs until it can record them: "+res.err.Error())
			return
		}
		u.internal(w, r, res.err)
		return
	case <-r.Context().Done():
		return
	}
	u.log.Info("manual run from the UI", "flow", f.ID, "run", id, "request", middleware.GetReqID(r.Context()))
	http.Redirect(w, r, "/runs/"+url.PathEscape(id), http.StatusSeeOther)
}

// runsPageView is the runs page's data.
type runsPageView struct {
	Runs     []runSummary
	Flows    []*engine.Flow
	Flow     string
	Status   string
	Statuses []string
	// Next is the link to older runs; "" on the last page. Newest links back to the first.
	Next   string
	Newest string
	Paged  bool // not the first page
}

// GET /runs?flow=&status=&before=
func (u *ui) runsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	if status != "" && !slices.Contains(runStatuses, status) {
		u.errorPage(w, r, http.StatusBadRequest, "Bad filter",
			fmt.Sprintf("Status must be one of %s; got %q.", strings.Join(runStatuses, ", "), status))
		return
	}
	v := runsPageView{Flow: q.Get("flow"), Status: status, Statuses: runStatuses, Flows: u.flows.Current().Flows(),
		Paged: q.Get("before") != ""}
	ctx, cancel := u.context(r)
	defer cancel()
	runs, err := u.runs.ListRuns(ctx, engine.RunFilter{FlowID: v.Flow, Status: status, Before: q.Get("before"), Limit: runsPageSize + 1})
	if err != nil {
		u.internal(w, r, err)
		return
	}
	if len(runs) > runsPageSize {
		runs = runs[:runsPageSize]
		v.Next = withQuery(r.URL, "before", runs[len(runs)-1].ID)
	}
	v.Runs = summaries(runs)
	v.Newest = withQuery(r.URL, "before", "")
	title := "Runs"
	if v.Flow != "" {
		title = "Runs of " + v.Flow
	}
	// Older pages stay put: new runs only ever appear on the first.
	u.render(w, r, http.StatusOK, "runs", page{Title: title, Nav: "runs", Live: !v.Paged, LiveFlow: v.Flow, Data: v})
}

// runPageView is the run page's data.
type runPageView struct {
	Run        *engine.Run
	Summary    runSummary
	Flow       *engine.Flow // nil when the flow is no longer loaded
	Changed    bool         // the loaded flow is another version than the run's
	Graph      template.HTML
	Waterfall  template.HTML
	Selected   *execView
	Executions []execLink
	// Hidden counts the executions before and after the listed window.
	Hidden       [2]int
	Static       []staticChangeView
	StaticHidden int // static-data changes not listed
	Reveal       bool
	RevealURL    string
}

// execLink is one node execution in the run page's list.
type execLink struct {
	Seq      int
	Node     string
	Type     string
	Status   engine.RunStatus
	Duration string
	URL      string
	Selected bool
	Recheck  bool
}

// execView is the selected node execution, with its items paged.
type execView struct {
	NR      *engine.NodeRun
	Input   itemsView
	Outputs []itemsView
	Others  []execLink // the node's other executions
}

// itemsView is one page of a node's input or of one output port.
type itemsView struct {
	Port      string
	Total     int // items the node really had
	Stored    int // items stored (fewer when the payload was truncated)
	First     int // 1-based number of the first item shown
	Items     []template.HTML
	Prev      string
	Next      string
	Page      int
	Pages     int
	Truncated bool
}

// staticChangeView is one static-data change of the run.
type staticChangeView struct {
	Node    string
	Seq     int
	Key     string
	Before  template.HTML
	After   template.HTML
	Deleted bool
	Masked  bool
}

// GET /runs/{id}?seq=&reveal=&in=&out<port>=
func (u *ui) runPage(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	ctx, cancel := u.context(r)
	defer cancel()
	run, err := u.runs.GetRun(ctx, id)
	if errors.Is(err, engine.ErrNotFound) {
		u.errorPage(w, r, http.StatusNotFound, "Run not found",
			fmt.Sprintf("There is no run %q. It may have been pruned by the retention setting.", id))
		return
	}
	if err != nil {
		u.internal(w, r, err)
		return
	}
	q := r.URL.Query()
	reveal := q.Get("reveal") == "1"
	v := runPageView{Run: run, Summary: summarize(run), Reveal: reveal}
	v.RevealURL = withQuery(r.URL, "reveal", toggle(reveal))

	sel := selectedSeq(run, q.Get("seq"))
	seqURL := func(seq int) string {
		// Selecting another execution starts its items at their first page.
		return withQuery(r.URL, "seq", strconv.Itoa(seq), "in", "", "out", "", "port", "")
	}
	if f := u.flows.Current().Flow(run.FlowID); f != nil {
		v.Flow, v.Changed = f, f.Version != run.FlowVersion
		selName := ""
		if sel >= 0 {
			selName = run.Nodes[sel].Node
		}
		v.Graph = renderGraph(f, graphOptions{Run: run, Selected: selName, NodeHref: func(name string) string {
			if seq := lastExecutionOf(run, name); seq >= 0 {
				return seqURL(seq)
			}
			return ""
		}})
	}
	// A run that looped may have thousands of executions: list and draw a window of them
	// around the selected one.
	lo, hi := executionWindow(len(run.Nodes), sel)
	v.Hidden = [2]int{lo, len(run.Nodes) - hi}
	if hi > lo {
		window := *run
		window.Nodes = run.Nodes[lo:hi]
		v.Waterfall = renderWaterfall(&window, seqURL)
	}
	link := func(i int) execLink {
		nr := &run.Nodes[i]
		return execLink{Seq: nr.Seq, Node: nr.Node, Type: nr.Type, Status: nr.Status,
			Duration: formatMicros(nr.DurationMicros), URL: seqURL(nr.Seq), Selected: i == sel, Recheck: nr.Recheck}
	}
	for i := lo; i < hi; i++ {
		v.Executions = append(v.Executions, link(i))
	}
	for i := range run.Nodes {
		nr := &run.Nodes[i]
		for _, c := range nr.Static {
			if len(v.Static) == maxListedExecutions {
				v.StaticHidden++
				continue
			}
			v.Static = append(v.Static, staticChange(nr, c, reveal))
		}
	}
	if sel >= 0 {
		nr := &run.Nodes[sel]
		ev := &execView{NR: nr}
		ev.Input = u.itemsPage(r.URL, "in", "input", nr.Input, nr.InputCount, nr.Truncated, reveal)
		for p, name := range nr.Ports {
			var items []engine.Item
			if p < len(nr.Output) {
				items = nr.Output[p]
			}
			total := len(items)
			if p < len(nr.OutputCounts) {
				total = nr.OutputCounts[p]
			}
			// Only the port named by "port" honours the "out" page; the others start at 1. Each
			// port's paging links name it.
			pq := r.URL.Query()
			if pq.Get("port") != name {
				pq.Del("out")
			}
			pq.Set("port", name)
			base := *r.URL
			base.RawQuery = pq.Encode()
			ev.Outputs = append(ev.Outputs, u.itemsPage(&base, "out", name, items, total, nr.Truncated, reveal))
		}
		for i := range run.Nodes {
			if run.Nodes[i].Node == nr.Node && i != sel && len(ev.Others) < maxListedExecutions {
				ev.Others = append(ev.Others, link(i))
			}
		}
		v.Selected = ev
	}
	live := run.Status == engine.StatusRunning
	u.render(w, r, http.StatusOK, "run", page{Title: "Run " + run.ID, Nav: "runs", Live: live, LiveFlow: run.FlowID, LiveRun: run.ID, Data: v})
}

// selectedSeq is the execution the run page shows: the one asked for, else the failed one,
// else the last; -1 when the run has no node executions.
func selectedSeq(run *engine.Run, asked string) int {
	if len(run.Nodes) == 0 {
		return -1
	}
	if n, err := strconv.Atoi(asked); err == nil {
		for i := range run.Nodes {
			if run.Nodes[i].Seq == n {
				return i
			}
		}
	}
	for i := len(run.Nodes) - 1; i >= 0; i-- {
		if run.Nodes[i].Status == engine.StatusError {
			return i
		}
	}
	return len(run.Nodes) - 1
}

// executionWindow is the range [lo, hi) of n executions a run page lists: all of them, or
// maxListedExecutions around the selected one.
func executionWindow(n, sel int) (lo, hi int) {
	if n <= maxListedExecutions {
		return 0, n
	}
	lo = max(0, min(sel-maxListedExecutions/2, n-maxListedExecutions))
	return lo, lo + maxListedExecutions
}

// lastExecutionOf is the seq of the node's last execution, or -1.
func lastExecutionOf(run *engine.Run, node string) int {
	for i := len(run.Nodes) - 1; i >= 0; i-- {
		if run.Nodes[i].Node == node {
			return run.Nodes[i].Seq
		}
	}
	return -1
}

// itemsPage renders one page of items; the page number is the query parameter param.
func (u *ui) itemsPage(base *url.URL, param, port string, items []engine.Item, total int, truncated, reveal bool) itemsView {
	iv := itemsView{Port: port, Total: total, Stored: len(items), Truncated: truncated && len(items) < total}
	iv.Pages = max(1, (len(items)+itemsPerPage-1)/itemsPerPage)
	iv.Page = 1
	if n, err := strconv.Atoi(base.Query().Get(param)); err == nil && n >= 1 {
		iv.Page = min(n, iv.Pages)
	}
	start := (iv.Page - 1) * itemsPerPage
	end := min(len(items), start+itemsPerPage)
	iv.First = start + 1
	for _, it := range items[start:end] {
		iv.Items = append(iv.Items, jsonHTML(map[string]any(it), jsonViewOptions{Reveal: reveal}))
	}
	if iv.Page > 1 {
		iv.Prev = withQuery(base, param, strconv.Itoa(iv.Page-1))
	}
	if iv.Page < iv.Pages {
		iv.Next = withQuery(base, param, strconv.Itoa(iv.Page+1))
	}
	return iv
}

// staticChange renders one static-data change; both sides are masked when the key itself is
// sensitive, and sensitive keys inside the values are masked anyway.
func staticChange(nr *engine.NodeRun, c engine.StaticChange, reveal bool) staticChangeView {
	o := jsonViewOptions{Reveal: reveal}
	return staticChangeView{
		Node: nr.Node, Seq: nr.Seq, Key: c.Key, Deleted: c.Deleted, Masked: !reveal && isSensitiveKey(c.Key),
		Before: jsonHTMLUnder(c.Key, c.Before, o), After: jsonHTMLUnder(c.Key, c.After, o),
	}
}

// GET /events
func (u *ui) serveEvents(w http.ResponseWriter, r *http.Request) { u.events.serveEvents(w, r) }
