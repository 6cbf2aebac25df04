package web

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// hookFlow is a flow file with one webhook node per (name, path, methods) triple.
func hookFlow(id string, hooks ...[3]string) string {
	var nodes []string
	for _, h := range hooks {
		nodes = append(nodes, `{"name": "`+h[0]+`", "type": "webhook", "parameters": {"path": "`+h[1]+`", "httpMethod": `+h[2]+`}}`)
	}
	return `{"id": "` + id + `", "nodes": [` + strings.Join(nodes, ", ") + `]}`
}

func TestNewFlowSetConflicts(t *testing.T) {
	tests := []struct {
		name  string
		flows map[string]string
		want  []string // substrings of the error; none means no error
	}{
		{
			name: "same method, params named differently",
			flows: map[string]string{
				"a.json": hookFlow("a", [3]string{"Hook A", "orders/:id", `"POST"`}),
				"b.json": hookFlow("b", [3]string{"Hook B", "orders/:oid", `["GET", "POST"]`}),
			},
			want: []string{`webhook POST: flows/a.json node "Hook A" (/webhook/orders/:id) and flows/b.json node "Hook B" (/webhook/orders/:oid) claim the same method and path`},
		},
		{
			name: "two nodes of one flow",
			flows: map[string]string{
				"a.json": hookFlow("a", [3]string{"One", "x", `"GET"`}, [3]string{"Two", "/x/", `["GET", "PUT"]`}),
			},
			want: []string{`webhook GET: flows/a.json node "One" (/webhook/x) and flows/a.json node "Two" (/webhook/x)`},
		},
		{
			name: "every conflict is reported",
			flows: map[string]string{
				"a.json": hookFlow("a", [3]string{"A", "x", `["GET", "POST"]`}),
				"b.json": hookFlow("b", [3]string{"B", "x", `["GET", "POST"]`}),
			},
			want: []string{"webhook GET: flows/a.json", "webhook POST: flows/a.json"},
		},
		{
			name: "different methods share a path",
			flows: map[string]string{
				"a.json": hookFlow("a", [3]string{"A", "orders/:id", `"GET"`}),
				"b.json": hookFlow("b", [3]string{"B", "orders/:id", `"POST"`}),
			},
		},
		{
			name: "static and parameter segments differ",
			flows: map[string]string{
				"a.json": hookFlow("a", [3]string{"A", "orders/:id", `"GET"`}),
				"b.json": hookFlow("b", [3]string{"B", "orders/new", `"GET"`}),
				"c.json": hookFlow("c", [3]string{"C", ":kind/new", `"GET"`}),
			},
		},
		{
			name: "a disabled node claims nothing",
			flows: map[string]string{
				"a.json": hookFlow("a", [3]string{"A", "x", `"GET"`}),
				"b.json": `{"id": "b", "nodes": [{"name": "B", "type": "webhook", "disabled": true, "parameters": {"path": "x"}}]}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := NewFlowSet(loadFlows(t, tt.flows))
			if len(tt.want) == 0 {
				if err != nil || set == nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNewFlowSetDuplicateID(t *testing.T) {
	a := loadFlows(t, map[string]string{"a.json": hookFlow("same", [3]string{"A", "a", `"GET"`})})
	b := loadFlows(t, map[string]string{"b.json": hookFlow("same", [3]string{"B", "b", `"GET"`})})
	_, err := NewFlowSet(append(a, b...))
	if err == nil || !strings.Contains(err.Error(), `flow id "same" is used by both flows/a.json and flows/b.json`) {
		t.Fatalf("error %v", err)
	}
}

func TestFlowSetMatch(t *testing.T) {
	set, err := NewFlowSet(loadFlows(t, map[string]string{
		"b.json": hookFlow("b", [3]string{"Order", "orders/:id", `["GET", "POST"]`}, [3]string{"Items", "orders/:id/items", `"GET"`}),
		"a.json": hookFlow("a", [3]string{"New", "orders/new", `"POST"`}, [3]string{"List", ":kind/list", `"GET"`}),
		"c.json": `{"id": "c", "nodes": [{"name": "Off", "type": "webhook", "disabled": true, "parameters": {"path": "off"}}]}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		wantNode           string // "" when no route matches
		wantParams         map[string]string
		wantAllow          []string
	}{
		{"static beats parameter", "POST", "orders/new", "New", map[string]string{}, nil},
		{"parameter route takes other methods", "GET", "orders/new", "Order", map[string]string{"id": "new"}, nil},
		{"parameter", "POST", "orders/7", "Order", map[string]string{"id": "7"}, nil},
		{"earlier static segment wins", "GET", "orders/list", "Order", map[string]string{"id": "list"}, nil},
		{"parameter first", "GET", "users/list", "List", map[string]string{"kind": "users"}, nil},
		{"leading and trailing slashes", "GET", "/orders/7/", "Order", map[string]string{"id": "7"}, nil},
		{"escaped segment", "GET", "orders/a%2Fb%20c", "Order", map[string]string{"id": "a/b c"}, nil},
		{"longer path", "GET", "orders/7/items", "Items", map[string]string{"id": "7"}, nil},
		{"wrong method", "PUT", "orders/7", "", nil, []string{"GET", "POST"}},
		{"wrong method, several routes", "DELETE", "orders/new", "", nil, []string{"GET", "POST"}},
		{"too short", "GET", "orders", "", nil, nil},
		{"empty segment", "GET", "orders//7", "", nil, nil},
		{"bad escape", "GET", "orders/%zz", "", nil, nil},
		{"empty", "GET", "", "", nil, nil},
		{"disabled node", "GET", "off", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, allow := set.Match(tt.method, tt.path)
			if tt.wantNode == "" {
				if m != nil {
					t.Fatalf("matched %s node %q", m.Flow.ID, m.Node.Name)
				}
				if !slices.Equal(allow, tt.wantAllow) {
					t.Fatalf("allow %v, want %v", allow, tt.wantAllow)
				}
				return
			}
			if m == nil {
				t.Fatalf("no match; allow %v", allow)
			}
			if m.Node.Name != tt.wantNode || !maps.Equal(m.Params, tt.wantParams) {
				t.Fatalf("matched node %q params %v, want %q %v", m.Node.Name, m.Params, tt.wantNode, tt.wantParams)
			}
		})
	}
}

func TestFlowSetAccessors(t *testing.T) {
	set, err := NewFlowSet(loadFlows(t, map[string]string{
		"z.json": hookFlow("zeta", [3]string{"Z", "z", `"GET"`}),
		"a.json": hookFlow("alpha", [3]string{"A", "a/:x", `"GET"`}),
	}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range set.Flows() {
		ids = append(ids, f.ID)
	}
	if !slices.Equal(ids, []string{"alpha", "zeta"}) {
		t.Errorf("flows %v", ids)
	}
	if set.Flow("zeta") == nil || set.Flow("nope") != nil {
		t.Errorf("Flow lookup")
	}
	var paths []string
	for _, r := range set.Routes() {
		paths = append(paths, r.Flow.ID+":"+r.Webhook.Path)
	}
	if !slices.Equal(paths, []string{"alpha:a/:x", "zeta:z"}) {
		t.Errorf("routes %v", paths)
	}

	var empty *FlowSet
	if m, allow := empty.Match("GET", "z"); m != nil || allow != nil || empty.Flows() != nil || empty.Flow("x") != nil || empty.Routes() != nil {
		t.Errorf("a nil set should be empty")
	}
}
