package nodes

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/flowd/flowd/engine"
)

// Webhook is a built webhook trigger: flowd serve routes /webhook/{Path} to the flow. Its item
// is {"headers", "params", "query", "body"}.
type Webhook struct {
	// Path is the path below /webhook/, without leading or trailing slashes. Segments written
	// ":name" match any one segment and reach the item as params.name.
	Path    string
	Methods []string // upper case, sorted
	// ResponseMode is "onReceived" (answer at once with the run id) or "lastNode" (answer
	// when the run ends with the last node's output).
	ResponseMode string
	// ResponseData, for lastNode: "firstEntryJson" (the first item), "allEntries" (every
	// item, as a list) or "noData" (an empty body).
	ResponseData    string
	ResponseCode    int
	ResponseHeaders map[string]string
}

// Run emits the trigger item.
func (w *Webhook) Run(ctx context.Context, in *engine.Input, out *engine.Output) error {
	return passThrough(ctx, in, out)
}

// Params returns the names of the path's ":name" segments, in order.
func (w *Webhook) Params() []string {
	var out []string
	for _, s := range strings.Split(w.Path, "/") {
		if strings.HasPrefix(s, ":") {
			out = append(out, s[1:])
		}
	}
	return out
}

var (
	webhookSegment = regexp.MustCompile(`^(:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9._~-]+)$`)
	webhookMethods = []string{
		http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead,
	}
)

func webhookType() *engine.NodeType {
	return &engine.NodeType{
		Name:    "webhook",
		Doc:     "Starts a run for each HTTP request to /webhook/{path}.",
		Trigger: true,
		Params: []engine.ParamSpec{
			{Name: "path", Kind: engine.KindString, Required: true, Doc: `Path below /webhook/; ":name" segments become params.name.`},
			{Name: "httpMethod", Kind: engine.KindAny, Default: "GET", Doc: "Method or list of methods: GET, POST, PUT, PATCH, DELETE, HEAD."},
			{Name: "responseMode", Kind: engine.KindString, Default: "onReceived", Enum: []string{"onReceived", "lastNode"}, Doc: "onReceived: answer at once with the run id; lastNode: answer with the last node's output."},
			{Name: "responseData", Kind: engine.KindString, Default: "firstEntryJson", Enum: []string{"firstEntryJson", "allEntries", "noData"}, Doc: "With lastNode: the first item, all items as a list, or no body."},
			{Name: "responseCode", Kind: engine.KindNumber, Default: int64(200), Doc: "HTTP status of a successful response."},
			{Name: "responseHeaders", Kind: engine.KindObject, Doc: "Extra response headers, name: value."},
		},
		New: newWebhook,
	}
}

func newWebhook(cfg *engine.NodeConfig) (engine.Node, error) {
	p := cfg.Params
	w := &Webhook{
		Path:         strings.Trim(p.String("path"), "/"),
		ResponseMode: p.String("responseMode"),
		ResponseData: p.String("responseData"),
		ResponseCode: p.Int("responseCode"),
	}
	if p.Has("path") {
		if w.Path == "" {
			p.Errorf("path", "must not be empty")
		}
		seen := map[string]bool{}
		for _, seg := range strings.Split(w.Path, "/") {
			if !webhookSegment.MatchString(seg) || seg == "." || seg == ".." {
				p.Errorf("path", "segment %q: use letters, digits and . _ ~ -, or :name for a parameter", seg)
				continue
			}
			if strings.HasPrefix(seg, ":") {
				if seen[seg] {
					p.Errorf("path", "parameter %s appears twice", seg)
				}
				seen[seg] = true
			}
		}
	}
	for _, m := range p.Strings("httpMethod") {
		m = strings.ToUpper(m)
		if !slices.Contains(webhookMethods, m) {
			p.Errorf("httpMethod", "%q is not one of %s", m, strings.Join(webhookMethods, ", "))
			continue
		}
		if !slices.Contains(w.Methods, m) {
			w.Methods = append(w.Methods, m)
		}
	}
	if p.Has("httpMethod") && len(w.Methods) == 0 {
		p.Errorf("httpMethod", "name at least one method")
	}
	slices.Sort(w.Methods)
	if w.ResponseCode < 200 || w.ResponseCode > 599 {
		p.Errorf("responseCode", "want an HTTP status from 200 to 599, got %d", w.ResponseCode)
	}
	if h := p.Object("responseHeaders"); h != nil {
		w.ResponseHeaders = map[string]string{}
		for _, k := range h.Keys() {
			w.ResponseHeaders[k] = h.String(k)
		}
	}
	return w, nil
}
