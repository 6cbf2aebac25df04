package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// Paging of GET /api/runs.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// healthTimeout bounds the health check of GET /healthz.
const healthTimeout = 5 * time.Second

// runStatuses are the values the status filter of GET /api/runs accepts.
var runStatuses = []string{
	string(engine.StatusRunning), string(engine.StatusSuccess), string(engine.StatusError),
	string(engine.StatusCanceled), string(engine.StatusCrashed),
}

// api serves the JSON API under /api, /healthz and /metrics.
type api struct {
	flows     FlowSource
	launcher  *launcher
	store     engine.RunReader
	static    StaticStore
	schedules ScheduleInfo // may be nil
	health    func(ctx context.Context) error
	cluster   func() ClusterStatus // may be nil
	auth      *Auth                // when enabled, /healthz details need credentials
	metrics   *Metrics
	maxBody   int64
	log       *slog.Logger
}

// flowSummary is a flow in GET /api/flows.
type flowSummary struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Version  string        `json:"version"`
	Settings settingsView  `json:"settings"`
	Triggers []triggerView `json:"triggers"`
	LastRun  *runSummary   `json:"lastRun"`
}

// flowView is a flow in GET /api/flows/{id}: the summary plus its nodes, connections and file.
type flowView struct {
	flowSummary
	Nodes []nodeView `json:"nodes"`
	// Connections maps a source node to its output ports, each to the target node names, in
	// file order; nodes and ports without targets are left out.
	Connections map[string]map[string][]string `json:"connections"`
	// Definition is the flow file as loaded.
	Definition json.RawMessage `json:"definition"`
}

type settingsView struct {
	Timeout  string `json:"timeout"`
	Timezone string `json:"timezone"`
}

type nodeView struct {
	Name     string      `json:"name"`
	Type     string      `json:"type"`
	Position *[2]float64 `json:"position"`
	Disabled bool        `json:"disabled"`
	Notes    string      `json:"notes,omitempty"`
	Ports    []string    `json:"ports"`
}

type triggerView struct {
	Node     string        `json:"node"`
	Type     string        `json:"type"`
	Disabled bool          `json:"disabled,omitempty"`
	Webhook  *webhookView  `json:"webhook,omitempty"`
	Schedule *scheduleView `json:"schedule,omitempty"`
}

type webhookView struct {
	Methods      []string `json:"methods"`
	Path         string   `json:"path"`
	URL          string   `json:"url"`
	ResponseMode string   `json:"responseMode"`
	ResponseData string   `json:"responseData,omitempty"`
}

type scheduleView struct {
	Cron     string `json:"cron,omitempty"`
	Interval string `json:"interval,omitempty"`
	Timezone string `json:"timezone"`
	CatchUp  string `json:"catchUp"`
	// Next is the next fire time; null when the schedule is not running.
	Next *time.Time `json:"next"`
}

// runSummary is a run without its node executions.
type runSummary struct {
	ID          string           `json:"id"`
	FlowID      string           `json:"flowId"`
	FlowName    string           `json:"flowName,omitempty"`
	FlowVersion string           `json:"flowVersion"`
	Trigger     string           `json:"trigger"`
	Mode        string           `json:"mode"`
	Status      engine.RunStatus `json:"status"`
	StartedAt   time.Time        `json:"startedAt"`
	FinishedAt  time.Time        `json:"finishedAt,omitzero"`
	DurationMs  *int64           `json:"durationMs,omitempty"`
	Error       string           `json:"error,omitempty"`
	ErrorNode   string           `json:"errorNode,omitempty"`
}

func summarize(r *engine.Run) runSummary {
	s := runSummary{
		ID: r.ID, FlowID: r.FlowID, FlowName: r.FlowName, FlowVersion: r.FlowVersion, Trigger: r.Trigger,
		Mode: r.Mode, Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Error: r.Error, ErrorNode: r.ErrorNode,
	}
	if !r.FinishedAt.IsZero() {
		ms := r.FinishedAt.Sub(r.StartedAt).Milliseconds()
		s.DurationMs = &ms
	}
	return s
}

// GET /api/flows
func (a *api) listFlows(w http.ResponseWriter, r *http.Request) {
	flows := a.flows.Current().Flows()
	out := make([]flowSummary, 0, len(flows))
	for _, f := range flows {
		s, err := a.summary(r, f)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		out = append(out, s)
	}
	renderJSON(w, r, a.log, http.StatusOK, map[string]any{"flows": out})
}

// GET /api/flows/{id}
func (a *api) getFlow(w http.ResponseWriter, r *http.Request) {
	f := a.flow(w, r)
	if f == nil {
		return
	}
	s, err := a.summary(r, f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	v := flowView{flowSummary: s, Nodes: make([]nodeView, len(f.Nodes)), Connections: map[string]map[string][]string{}}
	for i, n := range f.Nodes {
		v.Nodes[i] = nodeView{Name: n.Name, Type: n.Type.Name, Position: n.Position, Disabled: n.Disabled, Notes: n.Notes, Ports: n.Ports}
		for p, targets := range n.Next {
			if len(targets) == 0 {
				continue
			}
			names := make([]string, len(targets))
			for j, t := range targets {
				names[j] = t.Name
			}
			if v.Connections[n.Name] == nil {
				v.Connections[n.Name] = map[string][]string{}
			}
			v.Connections[n.Name][n.Ports[p]] = names
		}
	}
	if len(f.Source) > 0 {
		v.Definition = json.RawMessage(f.Source)
	}
	renderJSON(w, r, a.log, http.StatusOK, v)
}

// flow returns the flow named by the {id} URL parameter, or answers 404 and returns nil.
func (a *api) flow(w http.ResponseWriter, r *http.Request) *engine.Flow {
	id := chi.URLParam(r, "id")
	f := a.flows.Current().Flow(id)
	if f == nil {
		renderError(w, r, a.log, http.StatusNotFound, fmt.Sprintf("flow %q not found", id))
	}
	return f
}

func (a *api) summary(r *http.Request, f *engine.Flow) (flowSummary, error) {
	return summarizeFlow(r.Context(), r, f, a.store, a.schedules)
}

// summarizeFlow describes f, its triggers and its last run; r gives the host for webhook URLs.
func summarizeFlow(ctx context.Context, r *http.Request, f *engine.Flow, runs engine.RunReader, schedules ScheduleInfo) (flowSummary, error) {
	s := flowSummary{
		ID: f.ID, Name: f.Name, File: f.File, Version: f.Version,
		Settings: settingsView{Timeout: f.Settings.Timeout.String(), Timezone: f.Settings.TimezoneName},
		Triggers: make([]triggerView, 0, len(f.Triggers)),
	}
	if s.Settings.Timezone == "" && f.Settings.Location != nil {
		s.Settings.Timezone = f.Settings.Location.String()
	}
	for _, n := range f.Triggers {
		s.Triggers = append(s.Triggers, describeTrigger(r, f, n, schedules))
	}
	last, err := runs.ListRuns(ctx, engine.RunFilter{FlowID: f.ID, Limit: 1})
	if err != nil {
		return s, fmt.Errorf("last run of %s: %w", f.ID, err)
	}
	if len(last) > 0 {
		rs := summarize(&last[0])
		s.LastRun = &rs
	}
	return s, nil
}

// describeTrigger describes a trigger node: its webhook URL or its schedule and next fire.
func describeTrigger(r *http.Request, f *engine.Flow, n *engine.FlowNode, schedules ScheduleInfo) triggerView {
	t := triggerView{Node: n.Name, Type: n.Type.Name, Disabled: n.Disabled}
	switch impl := n.Impl.(type) {
	case *nodes.Webhook:
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		t.Webhook = &webhookView{
			Methods: impl.Methods, Path: impl.Path, URL: scheme + "://" + r.Host + "/webhook/" + impl.Path,
			ResponseMode: impl.ResponseMode,
		}
		if impl.ResponseMode == "lastNode" {
			t.Webhook.ResponseData = impl.ResponseData
		}
	case *nodes.Schedule:
		sv := &scheduleView{Cron: impl.Cron, CatchUp: impl.CatchUp}
		if impl.Interval > 0 {
			sv.Interval = impl.Interval.String()
		}
		if impl.Location != nil {
			sv.Timezone = impl.Location.String()
		}
		if schedules != nil {
			if next, ok := schedules.NextFire(f.ID, n.Name); ok {
				sv.Next = &next
			}
		}
		t.Schedule = sv
	}
	return t
}

// runInput is the optional body of POST /api/flows/{id}/run.
type runInput struct {
	Trigger string          `json:"trigger"`
	Input   json.RawMessage `json:"input"`
}

// POST /api/flows/{id}/run
func (a *api) runFlow(w http.ResponseWriter, r *http.Request) {
	f := a.flow(w, r)
	if f == nil {
		return
	}
	in, items, status, err := a.readRunInput(w, r)
	if err != nil {
		renderError(w, r, a.log, status, err.Error())
		return
	}
	switch n := f.Node(in.Trigger); {
	case in.Trigger == "" && len(f.Triggers) == 0:
		renderError(w, r, a.log, http.StatusBadRequest, fmt.Sprintf("flow %q has no trigger node", f.ID))
		return
	case in.Trigger != "" && (n == nil || !n.Type.Trigger):
		renderError(w, r, a.log, http.StatusBadRequest, fmt.Sprintf("flow %q has no trigger node %q", f.ID, in.Trigger))
		return
	}
	id := engine.NewRunID(time.Now())
	done, err := a.launcher.start(f, engine.RunRequest{ID: id, Trigger: in.Trigger, Mode: "manual", Items: items}, middleware.GetReqID(r.Context()))
	if err != nil {
		code, msg := startError(w, err)
		renderError(w, r, a.log, code, msg)
		return
	}
	select {
	case res := <-done:
		if res.err != nil {
			code := runErrorStatus(w, res.err)
			if errors.Is(res.err, engine.ErrNoTrigger) {
				code = http.StatusBadRequest
			}
			renderJSON(w, r, a.log, code, errorBody{Error: res.err.Error(), Code: code, RunID: id})
			return
		}
		renderJSON(w, r, a.log, http.StatusOK, res.run)
	case <-r.Context().Done():
		a.log.Info("API client went away before its manual run ended", "flow", f.ID, "run", id)
	}
}

// readRunInput reads the optional run body: {"trigger": name, "input": item-or-list}. Items
// are nil when no input is given (the engine then starts with one empty item).
func (a *api) readRunInput(w http.ResponseWriter, r *http.Request) (runInput, []engine.Item, int, error) {
	var in runInput
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return in, nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", a.maxBody)
		}
		return in, nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return in, nil, 0, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, nil, http.StatusBadRequest, fmt.Errorf("malformed request body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return in, nil, http.StatusBadRequest, errors.New("malformed request body: more than one JSON value")
	}
	if len(in.Input) == 0 || string(in.Input) == "null" {
		return in, nil, 0, nil
	}
	v, err := engine.DecodeJSON(in.Input)
	if err != nil {
		return in, nil, http.StatusBadRequest, fmt.Errorf("malformed input: %w", err)
	}
	items, err := engine.ItemsOf(v)
	if ie, ok := errors.AsType[*engine.ItemsError](err); ok && ie.Index >= 0 {
		return in, nil, http.StatusBadRequest, fmt.Errorf("input[%d]: input must be an object or a list of objects", ie.Index)
	}
	if err != nil {
		return in, nil, http.StatusBadRequest, errors.New("input must be an object or a list of objects")
	}
	return in, items, 0, nil
}

// GET /api/flows/{id}/static[?reveal=1]
func (a *api) getStatic(w http.ResponseWriter, r *http.Request) {
	f := a.flow(w, r)
	if f == nil {
		return
	}
	data, err := a.static.Static(r.Context(), f.ID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	// Values under sensitive keys are masked, as in the UI, unless asked for with reveal=1.
	var out any = data
	if r.URL.Query().Get("reveal") != "1" {
		out = maskValue(data)
	}
	renderJSON(w, r, a.log, http.StatusOK, map[string]any{"flowId": f.ID, "data": out})
}

// DELETE /api/flows/{id}/static
func (a *api) resetStatic(w http.ResponseWriter, r *http.Request) {
	f := a.flow(w, r)
	if f == nil {
		return
	}
	if err := a.static.ResetStatic(r.Context(), f.ID); err != nil {
		a.internal(w, r, err)
		return
	}
	a.log.Info("static data reset", "flow", f.ID, "request", middleware.GetReqID(r.Context()))
	w.WriteHeader(http.StatusNoContent)
}

// GET /api/runs?flow=&status=&limit=&before=
func (a *api) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains([]string{"flow", "status", "limit", "before"}, k) {
			renderError(w, r, a.log, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q; use flow, status, limit and before", k))
			return
		}
	}
	limit := defaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			renderError(w, r, a.log, http.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d, got %q", maxPageSize, s))
			return
		}
		limit = n
	}
	status := q.Get("status")
	if status != "" && !slices.Contains(runStatuses, status) {
		renderError(w, r, a.log, http.StatusBadRequest, fmt.Sprintf("status must be one of %s, got %q", strings.Join(runStatuses, ", "), status))
		return
	}
	// One more than asked, to know whether another page follows.
	runs, err := a.store.ListRuns(r.Context(), engine.RunFilter{
		FlowID: q.Get("flow"), Status: status, Before: q.Get("before"), Limit: limit + 1,
	})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	next := ""
	if len(runs) > limit {
		runs = runs[:limit]
		next = runs[limit-1].ID
	}
	renderJSON(w, r, a.log, http.StatusOK, map[string]any{"runs": summaries(runs), "next": next})
}

// GET /api/runs/{id}
func (a *api) getRun(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	run, err := a.store.GetRun(r.Context(), id)
	if errors.Is(err, engine.ErrNotFound) {
		renderError(w, r, a.log, http.StatusNotFound, fmt.Sprintf("run %q not found", id))
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	renderJSON(w, r, a.log, http.StatusOK, run)
}

// GET /healthz. Flow versions that differ across a cluster are reported, not failed: the
// instance still serves, and a load balancer taking it out would not make the files agree.
//
// /healthz answers without credentials, for load balancers. When the server has
// authentication and the request brings none, the answer names nothing: no error text, no
// instance or flow, only counts (publicCluster).
func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	details := !a.auth.Enabled() || a.auth.allows(r)
	body := map[string]any{"status": "ok"}
	if a.cluster != nil {
		st := a.cluster()
		if st.FlowsDiffer == nil {
			st.FlowsDiffer = []FlowDiff{}
		}
		if details {
			body["cluster"] = st
		} else {
			body["cluster"] = publicCluster{Instances: st.Instances, ScheduleLeader: st.ScheduleLeader, FlowsDiffer: len(st.FlowsDiffer)}
		}
	}
	status := http.StatusOK
	if a.health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if err := a.health(ctx); err != nil {
			a.log.Warn("health check failed", "error", err)
			status, body["status"] = http.StatusServiceUnavailable, "degraded"
			if details {
				body["error"] = err.Error()
			}
		}
	}
	renderJSON(w, r, a.log, status, body)
}

// publicCluster is the cluster part of /healthz for a caller without credentials on a server
// with authentication: enough to balance load or raise an alert, without host or flow names.
type publicCluster struct {
	Instances      int  `json:"instances"`
	ScheduleLeader bool `json:"scheduleLeader"`
	// FlowsDiffer counts the flows whose versions differ between live instances.
	FlowsDiffer int `json:"flowsDifferCount"`
}

// GET /metrics
func (a *api) prometheus(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	a.metrics.WritePrometheus(&buf)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

// internal logs err and answers 500 with it.
func (a *api) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "request", middleware.GetReqID(r.Context()), "error", err)
	renderError(w, r, a.log, http.StatusInternalServerError, err.Error())
}
