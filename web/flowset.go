package web

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// FlowSet is one loaded version of all flows and the webhook route table built from them. It
// is immutable once built, so a request can use it while a reload builds the next one.
type FlowSet struct {
	flows []*engine.Flow // sorted by id
	byID  map[string]*engine.Flow
	// routes are the webhook routes, grouped by segment count and, within a group, most
	// specific first (see shape), so that the first match for a method is the best one.
	routes map[int][]*route
}

// WebhookRoute is one webhook trigger node and the flow it starts.
type WebhookRoute struct {
	Flow    *engine.Flow
	Node    *engine.FlowNode
	Webhook *nodes.Webhook
}

// WebhookMatch is the route a request matched, with its path parameters.
type WebhookMatch struct {
	WebhookRoute
	// Params maps each ":name" segment of the route's path to the request's (unescaped)
	// segment; empty, not nil, when the path has none.
	Params map[string]string
}

// Shape bytes: static sorts before parameter.
const (
	shapeStatic = '0'
	shapeParam  = '1'
)

type route struct {
	WebhookRoute
	segs []string // the path's segments, ":name" for a parameter
	// shape has one byte per segment, shapeStatic or shapeParam. Two paths with one shape
	// and equal static segments are the same pattern; sorting shapes ascending puts static
	// segments before parameters, position by position.
	shape string
}

// pattern is the route's path with every parameter written ":", so that orders/:id and
// orders/:oid compare equal.
func (r *route) pattern() string {
	segs := make([]string, len(r.segs))
	for i, s := range r.segs {
		if r.shape[i] == shapeParam {
			s = ":"
		}
		segs[i] = s
	}
	return strings.Join(segs, "/")
}

// NewFlowSet builds the set and its webhook route table. Two flows with one id, or two webhook
// nodes (in one flow or two) that claim the same method on the same path pattern, are errors
// naming both files and nodes; every conflict is reported. Disabled webhook nodes get no
// route. The flows are not copied: callers must not change them afterwards.
func NewFlowSet(flows []*engine.Flow) (*FlowSet, error) {
	s := &FlowSet{byID: make(map[string]*engine.Flow, len(flows)), routes: map[int][]*route{}}
	var errs []error
	for _, f := range flows {
		if other, ok := s.byID[f.ID]; ok {
			errs = append(errs, fmt.Errorf("flow id %q is used by both %s and %s", f.ID, other.File, f.File))
			continue
		}
		s.byID[f.ID] = f
		s.flows = append(s.flows, f)
	}
	slices.SortFunc(s.flows, func(a, b *engine.Flow) int { return strings.Compare(a.ID, b.ID) })

	// claims maps "METHOD pattern" to the route that claimed it first.
	claims := map[string]*route{}
	for _, f := range s.flows {
		for _, n := range f.Triggers {
			hook, ok := n.Impl.(*nodes.Webhook)
			if !ok || n.Disabled {
				continue
			}
			r := newRoute(WebhookRoute{Flow: f, Node: n, Webhook: hook})
			clash := false
			for _, m := range hook.Methods {
				key := m + " " + r.pattern()
				if first, ok := claims[key]; ok {
					errs = append(errs, fmt.Errorf("webhook %s: %s node %q (/webhook/%s) and %s node %q (/webhook/%s) claim the same method and path",
						m, first.Flow.File, first.Node.Name, first.Webhook.Path, f.File, n.Name, hook.Path))
					clash = true
					continue
				}
				claims[key] = r
			}
			if !clash {
				s.routes[len(r.segs)] = append(s.routes[len(r.segs)], r)
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("build webhook routes: %w", errors.Join(errs...))
	}
	for _, group := range s.routes {
		slices.SortStableFunc(group, func(a, b *route) int { return strings.Compare(a.shape, b.shape) })
	}
	return s, nil
}

func newRoute(wr WebhookRoute) *route {
	r := &route{WebhookRoute: wr, segs: strings.Split(wr.Webhook.Path, "/")}
	shape := make([]byte, len(r.segs))
	for i, seg := range r.segs {
		shape[i] = shapeStatic
		if strings.HasPrefix(seg, ":") {
			shape[i] = shapeParam
		}
	}
	r.shape = string(shape)
	return r
}

// Flows returns every flow, sorted by id. The slice is shared: do not change it. A nil set
// has no flows.
func (s *FlowSet) Flows() []*engine.Flow {
	if s == nil {
		return nil
	}
	return s.flows
}

// Flow returns the flow with that id, or nil.
func (s *FlowSet) Flow(id string) *engine.Flow {
	if s == nil {
		return nil
	}
	return s.byID[id]
}

// Routes returns every webhook route, ordered by path and then flow id.
func (s *FlowSet) Routes() []WebhookRoute {
	if s == nil {
		return nil
	}
	var out []WebhookRoute
	for _, group := range s.routes {
		for _, r := range group {
			out = append(out, r.WebhookRoute)
		}
	}
	slices.SortFunc(out, func(a, b WebhookRoute) int {
		if c := strings.Compare(a.Webhook.Path, b.Webhook.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Flow.ID, b.Flow.ID)
	})
	return out
}

// Match finds the webhook route for a request. path is the escaped request path below
// /webhook/; leading and trailing slashes do not matter. Among routes accepting the method, a
// static segment beats a parameter at the first position where they differ, so orders/new
// wins over orders/:id for the request orders/new.
//
// When no route accepts the method, Match returns nil and the methods the routes matching
// the path accept, sorted (so the caller answers 405 with them as Allow); when no route
// matches the path at all it returns nil, nil (404).
func (s *FlowSet) Match(method, path string) (*WebhookMatch, []string) {
	if s == nil {
		return nil, nil
	}
	path = strings.Trim(path, "/")
	if path == "" {
		return nil, nil
	}
	raw := strings.Split(path, "/")
	segs := make([]string, len(raw))
	for i, seg := range raw {
		v, err := url.PathUnescape(seg)
		if err != nil || v == "" {
			return nil, nil // an empty or badly escaped segment matches nothing
		}
		segs[i] = v
	}
	var allow []string
	for _, r := range s.routes[len(segs)] {
		if !r.matches(segs) {
			continue
		}
		if slices.Contains(r.Webhook.Methods, method) {
			params := map[string]string{}
			for i, seg := range r.segs {
				if r.shape[i] == shapeParam {
					params[seg[1:]] = segs[i]
				}
			}
			return &WebhookMatch{WebhookRoute: r.WebhookRoute, Params: params}, nil
		}
		for _, m := range r.Webhook.Methods {
			if !slices.Contains(allow, m) {
				allow = append(allow, m)
			}
		}
	}
	slices.Sort(allow)
	return nil, allow
}

func (r *route) matches(segs []string) bool {
	for i, seg := range r.segs {
		if r.shape[i] == shapeStatic && seg != segs[i] {
			return false
		}
	}
	return true
}
