package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// statusClientGone is what the metrics count for a lastNode request whose client went away
// before its run ended (nginx's "client closed request"); nothing is sent.
const statusClientGone = 499

// runIDHeader carries the run id on every webhook response of a request that started a run.
const runIDHeader = "X-Flowd-Run-Id"

// webhooks serves /webhook/*: it finds the trigger in the live flow set, turns the request
// into the trigger item, starts the run and answers as the node's response mode says.
type webhooks struct {
	flows    FlowSource
	launcher *launcher
	metrics  *Metrics
	maxBody  int64
	log      *slog.Logger
	// secrets gives the values of the secrets webhook nodes name; nil means none.
	secrets engine.Secrets
	limits  *limiters
	// seen is the flow set the last request used, to notice a reload (see current).
	seen atomic.Pointer[FlowSet]
}

// count is the middleware that counts webhook responses by status, panics included.
func (h *webhooks) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			if p := recover(); p != nil {
				h.metrics.webhookRequest(http.StatusInternalServerError)
				panic(p) // for the recoverer, which answers
			}
			status := ww.Status()
			switch {
			case status != 0:
			case r.Context().Err() != nil:
				status = statusClientGone
			default:
				status = http.StatusOK
			}
			h.metrics.webhookRequest(status)
		}()
		next.ServeHTTP(ww, r)
	})
}

func (h *webhooks) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(strings.TrimPrefix(r.URL.EscapedPath(), "/webhook"), "/")
	m, allow := h.current().Match(r.Method, path)
	if m == nil {
		if len(allow) == 0 {
			renderError(w, r, h.log, http.StatusNotFound, fmt.Sprintf("webhook \"%s /webhook/%s\" is not registered", r.Method, path))
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		renderError(w, r, h.log, http.StatusMethodNotAllowed,
			fmt.Sprintf("webhook /webhook/%s does not accept %s; it accepts %s", path, r.Method, strings.Join(allow, ", ")))
		return
	}

	raw, status, err := h.readBody(w, r)
	if err != nil {
		renderError(w, r, h.log, status, err.Error())
		return
	}
	// Nothing about the request is parsed or answered from its body before it has
	// authenticated, and a refused request starts no run.
	if !h.authorize(w, r, m, raw) || !h.admit(w, r, m) {
		return
	}
	body, status, err := decodeBody(r, raw)
	if err != nil {
		renderError(w, r, h.log, status, err.Error())
		return
	}
	headers := requestHeaders(r)
	if name := credentialHeader(&m.Webhook.Auth); name != "" {
		delete(headers, strings.ToLower(name)) // the secret itself: never into the run record
	}
	item := engine.Item{
		"headers": headers,
		"params":  stringMap(m.Params),
		"query":   multiMap(r.URL.Query()),
		"body":    body,
	}
	reqID := middleware.GetReqID(r.Context())
	id := engine.NewRunID(time.Now())
	var recorded chan struct{}
	req := engine.RunRequest{ID: id, Trigger: m.Node.Name, Mode: "webhook", Items: []engine.Item{item}}
	if m.Webhook.ResponseMode != "lastNode" {
		// onReceived answers once the run is recorded; lastNode answers when it has ended, and
		// its end is recorded after its start, so its start need not be waited for.
		recorded = make(chan struct{})
		req.Started = func(*engine.Run) { close(recorded) }
	}
	done, err := h.launcher.start(m.Flow, req, reqID)
	if err != nil {
		code, msg := startError(w, err)
		renderError(w, r, h.log, code, msg)
		return
	}
	w.Header().Set(runIDHeader, id)

	hook := m.Webhook
	if hook.ResponseMode != "lastNode" {
		// Answer once the run is in the store, so an answered run survives a crash.
		select {
		case <-recorded:
			h.respond(w, r, hook, map[string]any{"message": "Workflow was started", "runId": id}, true)
		case res := <-done:
			if res.err != nil {
				renderError(w, r, h.log, runErrorStatus(w, res.err), fmt.Sprintf("run %s could not be started: %v", id, res.err))
				return
			}
			h.respond(w, r, hook, map[string]any{"message": "Workflow was started", "runId": id}, true)
		}
		return
	}
	select {
	case res := <-done:
		h.respondLastNode(w, r, hook, id, res)
	case <-r.Context().Done():
		// The run goes on, on the server's context; only the answer is lost.
		h.log.Info("webhook client went away before its run ended", "flow", m.Flow.ID, "run", id, "request", reqID)
	}
}

// readBody reads the raw request body, bounded by maxBody. On failure it returns the status
// to answer.
func (h *webhooks) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if r.ContentLength > h.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", h.maxBody)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", h.maxBody)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	return data, 0, nil
}

// decodeBody decodes a raw request body by Content-Type: JSON (numbers as
// engine.PlainNumbers makes them), a form (an object, see multiMap) or text. An empty body is
// {}. On failure it returns the status to answer.
func decodeBody(r *http.Request, data []byte) (any, int, error) {
	var err error
	mediaType := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mediaType, _, err = mime.ParseMediaType(ct)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("malformed Content-Type %q: %w", ct, err)
		}
	}
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		if len(bytes.TrimSpace(data)) == 0 {
			return map[string]any{}, 0, nil
		}
		v, err := engine.DecodeJSON(data)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("malformed JSON body: %w", err)
		}
		return v, 0, nil
	case mediaType == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(data))
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("malformed form body: %w", err)
		}
		return multiMap(vals), 0, nil
	case strings.HasPrefix(mediaType, "multipart/"):
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("%s bodies are not supported; send JSON, a form (application/x-www-form-urlencoded) or text", mediaType)
	case len(data) == 0:
		return map[string]any{}, 0, nil
	case !utf8.Valid(data):
		return nil, http.StatusUnsupportedMediaType, errors.New("the body is not UTF-8 text; send JSON, a form (application/x-www-form-urlencoded) or text")
	default:
		return string(data), 0, nil
	}
}

// requestHeaders returns the request's headers with lower-case names, Host included.
func requestHeaders(r *http.Request) map[string]any {
	out := make(map[string]any, len(r.Header)+1)
	for k, vs := range r.Header {
		out[strings.ToLower(k)] = oneOrList(vs)
	}
	if r.Host != "" {
		out["host"] = r.Host
	}
	return out
}

// multiMap turns query or form values into an object: a name given once maps to its string,
// a repeated name to the list of its strings. Percent escapes may decode to bytes that are
// not UTF-8; they become U+FFFD, so the item stored as JSON is the item the flow ran with.
func multiMap(vals map[string][]string) map[string]any {
	out := make(map[string]any, len(vals))
	for k, vs := range vals {
		for i, v := range vs {
			vs[i] = strings.ToValidUTF8(v, "\uFFFD")
		}
		out[strings.ToValidUTF8(k, "\uFFFD")] = oneOrList(vs)
	}
	return out
}

func oneOrList(vs []string) any {
	if len(vs) == 1 {
		return vs[0]
	}
	list := make([]any, len(vs))
	for i, v := range vs {
		list[i] = v
	}
	return list
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// respond answers a successful webhook request with the node's status code and headers and,
// when withBody, body as JSON. The node's headers may override Content-Type, not
// Content-Length. Statuses that allow no body (1xx, 204, 304) get none.
func (h *webhooks) respond(w http.ResponseWriter, r *http.Request, hook *nodes.Webhook, body any, withBody bool) {
	code := hook.ResponseCode
	if code == 0 {
		code = http.StatusOK
	}
	withBody = withBody && bodyAllowed(code)
	var data []byte
	if withBody {
		var err error
		if data, err = encodeJSON(body); err != nil {
			h.log.Error("encode webhook response", "path", r.URL.Path, "request", middleware.GetReqID(r.Context()), "error", err)
			renderJSON(w, r, h.log, http.StatusInternalServerError, errorBody{
				Error: "encode response: " + err.Error(), Code: http.StatusInternalServerError, RunID: w.Header().Get(runIDHeader),
			})
			return
		}
		w.Header()["Content-Type"] = jsonContentType
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	}
	for k, v := range hook.ResponseHeaders {
		if http.CanonicalHeaderKey(k) == "Content-Length" {
			continue // the body decides it
		}
		w.Header().Set(k, v)
	}
	w.WriteHeader(code)
	if withBody {
		_, _ = w.Write(data)
	}
}

// storeRetryAfter is the Retry-After, in seconds, of a 503 for a database that cannot write.
const storeRetryAfter = "30"

// runErrorStatus is the status for a run that could not be started or recorded: 503, with
// Retry-After, when the database cannot write — the caller should send again later, nothing
// was kept — and 500 otherwise.
func runErrorStatus(w http.ResponseWriter, err error) int {
	if errors.Is(err, engine.ErrStoreUnavailable) {
		w.Header().Set("Retry-After", storeRetryAfter)
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// bodyAllowed reports whether a response with this status may carry a body.
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// respondLastNode answers a lastNode request once its run has ended: a run that failed, or
// could not be started or recorded, is a 500 with the error and the run id; otherwise the
// last node's output as the node's responseData says.
func (h *webhooks) respondLastNode(w http.ResponseWriter, r *http.Request, hook *nodes.Webhook, id string, res runResult) {
	fail := func(msg string) {
		renderJSON(w, r, h.log, http.StatusInternalServerError, errorBody{Error: msg, Code: http.StatusInternalServerError, RunID: id})
	}
	switch {
	case res.err != nil:
		code := runErrorStatus(w, res.err)
		renderJSON(w, r, h.log, code, errorBody{Error: res.err.Error(), Code: code, RunID: id})
		return
	case res.run.Status != engine.StatusSuccess:
		msg := res.run.Error
		if msg == "" {
			msg = "run ended with status " + string(res.run.Status)
		}
		fail(msg)
		return
	}
	last := lastExecution(res.run)
	switch hook.ResponseData {
	case "noData":
		h.respond(w, r, hook, nil, false)
	case "allEntries":
		items := []engine.Item{}
		if last != nil {
			for _, port := range last.Output {
				items = append(items, port...)
			}
		}
		h.respond(w, r, hook, items, true)
	default: // firstEntryJson
		var first engine.Item // nil encodes as {}
		if last != nil {
			for _, port := range last.Output {
				if len(port) > 0 {
					first = port[0]
					break
				}
			}
		}
		h.respond(w, r, hook, first, true)
	}
}

// lastExecution is the run's last node execution that was not a recheck under a lock, or nil.
func lastExecution(run *engine.Run) *engine.NodeRun {
	for i := len(run.Nodes) - 1; i >= 0; i-- {
		if !run.Nodes[i].Recheck {
			return &run.Nodes[i]
		}
	}
	return nil
}
