package web

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// xnode is one element of a parsed SVG.
type xnode struct {
	name string
	attr map[string]string
	kids []*xnode
	text string // character data directly inside
}

// parseSVG parses out as XML, failing the test unless it is exactly one well-formed <svg>.
func parseSVG(t testing.TB, out template.HTML) *xnode {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(out)))
	var root *xnode
	var stack []*xnode
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, out)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: tok.Name.Local, attr: map[string]string{}}
			for _, a := range tok.Attr {
				n.attr[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.kids = append(top.kids, n)
			} else if root != nil {
				t.Fatalf("more than one root element:\n%s", out)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			} else if strings.TrimSpace(string(tok)) != "" {
				t.Fatalf("text outside the root element: %q", tok)
			}
		}
	}
	if root == nil || root.name != "svg" {
		t.Fatalf("root is not <svg>:\n%s", out)
	}
	return root
}

// find returns the elements below n (n included) that match, in document order.
func (n *xnode) find(match func(*xnode) bool) []*xnode {
	var out []*xnode
	if match(n) {
		out = append(out, n)
	}
	for _, k := range n.kids {
		out = append(out, k.find(match)...)
	}
	return out
}

func (n *xnode) hasClass(c string) bool {
	for _, f := range strings.Fields(n.attr["class"]) {
		if f == c {
			return true
		}
	}
	return false
}

// allText is the text of n and everything below it.
func (n *xnode) allText() string {
	s := n.text
	for _, k := range n.kids {
		s += k.allText()
	}
	return s
}

// child returns the first element below n with that class, or nil.
func (n *xnode) child(class string) *xnode {
	if found := n.find(func(k *xnode) bool { return k != n && k.hasClass(class) }); len(found) > 0 {
		return found[0]
	}
	return nil
}

// drawnNode is a node group of a rendered graph.
type drawnNode struct {
	*xnode
	x, y float64
}

// graphNodes maps node names to their drawn groups.
func graphNodes(t testing.TB, svg *xnode) map[string]drawnNode {
	t.Helper()
	out := map[string]drawnNode{}
	for _, g := range svg.find(func(n *xnode) bool { return n.name == "g" && n.hasClass("node") }) {
		var x, y float64
		if _, err := fmt.Sscanf(g.attr["transform"], "translate(%g,%g)", &x, &y); err != nil {
			t.Fatalf("node %q: transform %q: %v", g.attr["data-node"], g.attr["transform"], err)
		}
		out[g.attr["data-node"]] = drawnNode{g, x, y}
	}
	return out
}

// viewBox returns the width and height of svg's viewBox.
func viewBox(t testing.TB, svg *xnode) (w, h float64) {
	t.Helper()
	var x0, y0 float64
	if _, err := fmt.Sscanf(svg.attr["viewBox"], "%g %g %g %g", &x0, &y0, &w, &h); err != nil || x0 != 0 || y0 != 0 {
		t.Fatalf("viewBox %q: %v", svg.attr["viewBox"], err)
	}
	return w, h
}

// checkBoxes fails when two node boxes (with the line under them) overlap or one leaves the
// viewBox.
func checkBoxes(t *testing.T, svg *xnode, drawn map[string]drawnNode) {
	t.Helper()
	w, h := viewBox(t, svg)
	var all []drawnNode
	for name, d := range drawn {
		if d.x < 0 || d.y < 0 || d.x+nodeW > w || d.y+nodeH+nodeMetaH > h {
			t.Errorf("node %q at (%g,%g) leaves the viewBox %gx%g", name, d.x, d.y, w, h)
		}
		all = append(all, d)
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if a.x < b.x+nodeW && b.x < a.x+nodeW && a.y < b.y+nodeH+nodeMetaH && b.y < a.y+nodeH+nodeMetaH {
				t.Errorf("nodes %q (%g,%g) and %q (%g,%g) overlap", a.attr["data-node"], a.x, a.y, b.attr["data-node"], b.x, b.y)
			}
		}
	}
}

// checkCSP fails when out needs what the pages' Content-Security-Policy forbids: style
// attributes, style or script elements, event handler attributes.
func checkCSP(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"style=", "<style", "<script"} {
		if strings.Contains(out, bad) {
			t.Errorf("output contains %q", bad)
		}
	}
	if m := regexp.MustCompile(`\son[a-z]+=`).FindString(out); m != "" {
		t.Errorf("output has an event handler attribute %q", m)
	}
}

// renderChecked draws f on its own and checks every node is drawn once, inside the viewBox,
// without overlaps.
func renderChecked(t *testing.T, f *engine.Flow) (*xnode, map[string]drawnNode) {
	t.Helper()
	svg := parseSVG(t, renderGraph(f, graphOptions{}))
	drawn := graphNodes(t, svg)
	if len(drawn) != len(f.Nodes) {
		t.Fatalf("drew %d nodes, want %d", len(drawn), len(f.Nodes))
	}
	checkBoxes(t, svg, drawn)
	return svg, drawn
}

func loadFlow(t testing.TB, src string) *engine.Flow {
	t.Helper()
	f, probs := (&engine.Loader{Registry: nodes.NewRegistry()}).Load("flows/test.json", []byte(src))
	if f == nil {
		t.Fatalf("load:\n%v", probs)
	}
	return f
}

// flowJSON builds a flow file: nodes as [name, type, params-or-""] and connections as given.
func flowJSON(t testing.TB, nodeList []map[string]any, conns map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": "test", "nodes": nodeList, "connections": conns})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hook(name string) map[string]any {
	return map[string]any{"name": name, "type": "webhook", "parameters": map[string]any{"path": slug(name)}}
}

func noop(name string) map[string]any { return map[string]any{"name": name, "type": "noOp"} }

func ifNode(name, cond string) map[string]any {
	return map[string]any{"name": name, "type": "if", "parameters": map[string]any{"condition": cond}}
}

func TestRenderGraphKeepsFilePositions(t *testing.T) {
	src, err := os.ReadFile("../flows/token-refresh.json")
	if err != nil {
		t.Fatal(err)
	}
	f := loadFlow(t, string(src))
	svg, drawn := renderChecked(t, f)
	sign := func(v float64) int { return cmpFloat(v, 0) }
	for _, a := range f.Nodes {
		for _, b := range f.Nodes {
			da, db := drawn[a.Name], drawn[b.Name]
			if sign(a.Position[0]-b.Position[0]) != sign(da.x-db.x) || sign(a.Position[1]-b.Position[1]) != sign(da.y-db.y) {
				t.Errorf("%q at %v, %q at %v in the file, but drawn at (%g,%g) and (%g,%g)",
					a.Name, *a.Position, b.Name, *b.Position, da.x, da.y, db.x, db.y)
			}
		}
	}
	// The file's spacing is kept too: Webhook and "1. initiate static data" are 240 apart,
	// stretched in x for our wider boxes; the two triggers 160 apart in y.
	if dx := drawn["1. initiate static data"].x - drawn["Webhook"].x; dx != 240*posStretchX {
		t.Errorf("x distance = %g, want the file's 240 × %g", dx, posStretchX)
	}
	if dy := drawn["Schedule Trigger"].y - drawn["Webhook"].y; dy != 160 {
		t.Errorf("y distance = %g, want the file's 160", dy)
	}
	if w, _ := viewBox(t, svg); w > 1140*posStretchX+nodeW+portLabelW+2*graphMargin {
		t.Errorf("viewBox width %g: more than the content needs", w)
	}
}

func TestRenderGraphScalesCrowdedPositions(t *testing.T) {
	tests := []struct {
		name      string
		positions [][2]float64
		keepOrder bool // false: too crowded to scale, laid out instead
	}{
		{"100 apart", [][2]float64{{0, 0}, {100, 0}, {200, 40}, {100, 60}}, true},
		{"negative offsets", [][2]float64{{-900, -500}, {-800, -500}, {-700, -480}}, true},
		{"all on one spot", [][2]float64{{5, 5}, {5, 5}, {5, 5}, {5, 5}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var list []map[string]any
			conns := map[string]any{}
			for i, p := range tc.positions {
				n := noop("n" + strconv.Itoa(i))
				if i == 0 {
					n = hook("n0")
				} else {
					conns["n"+strconv.Itoa(i-1)] = []string{"n" + strconv.Itoa(i)}
				}
				n["position"] = p
				list = append(list, n)
			}
			_, drawn := renderChecked(t, loadFlow(t, flowJSON(t, list, conns)))
			for i, a := range tc.positions {
				for j, b := range tc.positions {
					da, db := drawn["n"+strconv.Itoa(i)], drawn["n"+strconv.Itoa(j)]
					if tc.keepOrder && a[0] < b[0] && !(da.x < db.x) {
						t.Errorf("n%d left of n%d in the file, drawn at x %g and %g", i, j, da.x, db.x)
					}
					if tc.keepOrder && a[1] < b[1] && !(da.y < db.y) {
						t.Errorf("n%d above n%d in the file, drawn at y %g and %g", i, j, da.y, db.y)
					}
				}
			}
		})
	}
}

// branchyFlow is a DAG without positions: two triggers, an If, a fan-out and joins.
func branchyFlow(t testing.TB) *engine.Flow {
	return loadFlow(t, flowJSON(t,
		[]map[string]any{
			hook("Hook"), noop("Prepare"), ifNode("Check", "{{ false }}"), noop("Yes"), noop("No"),
			noop("Join"), hook("Other hook"), noop("Side"), noop("Lonely"), noop("Feeds Join"),
		},
		map[string]any{
			"Hook":       []string{"Prepare"},
			"Other hook": []string{"Prepare", "Side"},
			"Prepare":    []string{"Check"},
			"Check":      map[string]any{"true": []string{"Yes"}, "false": []string{"No", "Join"}},
			"Yes":        []string{"Join"},
			"No":         []string{"Join"},
			"Feeds Join": []string{"Join"},
		}))
}

func TestRenderGraphAutoLayout(t *testing.T) {
	flows := map[string]*engine.Flow{"branchy": branchyFlow(t), "200 nodes": bigFlow(t, 200, false)}
	// One node without a position makes the whole flow laid out.
	partial := bigFlow(t, 30, true)
	partial.Nodes[7].Position = nil
	flows["one position missing"] = partial
	for name, f := range flows {
		t.Run(name, func(t *testing.T) {
			svg, drawn := renderChecked(t, f)
			for _, n := range f.Nodes {
				for _, targets := range n.Next {
					for _, m := range targets {
						if !(drawn[n.Name].x < drawn[m.Name].x) {
							t.Errorf("edge %q → %q points left: x %g → %g", n.Name, m.Name, drawn[n.Name].x, drawn[m.Name].x)
						}
					}
				}
			}
			if edges := svg.find(func(n *xnode) bool { return n.hasClass("edge-back") }); len(edges) > 0 {
				t.Errorf("%d back edges in a DAG", len(edges))
			}
		})
	}
	// Longest path: Join comes after No, which comes after Check, which comes after Prepare.
	drawn := graphNodes(t, parseSVG(t, renderGraph(flows["branchy"], graphOptions{})))
	if !(drawn["Hook"].x == drawn["Other hook"].x && drawn["No"].x < drawn["Join"].x) {
		t.Errorf("layers: Hook %g, Other hook %g, No %g, Join %g", drawn["Hook"].x, drawn["Other hook"].x, drawn["No"].x, drawn["Join"].x)
	}
	// A root that is no trigger sits right before the node it feeds, not in the first column.
	if drawn["Feeds Join"].x != drawn["No"].x {
		t.Errorf("Feeds Join at x %g, want its target's layer before, x %g", drawn["Feeds Join"].x, drawn["No"].x)
	}
}

// bigFlow is a DAG of n nodes about three wide: a webhook feeding nodes 1-3, then each node i
// feeding i+3 and often i+4 too; every seventh is an If sending true to i+3, false to i+4.
// With positions, they are n8n-like: 220 apart across, 160 down.
func bigFlow(t testing.TB, n int, positions bool) *engine.Flow {
	list := []map[string]any{hook("node 0")}
	conns := map[string]any{"node 0": []string{"node 1", "node 2", "node 3"}}
	name := func(i int) string { return "node " + strconv.Itoa(i) }
	for i := 1; i < n; i++ {
		var targets []string
		for _, j := range []int{i + 3, i + 4} {
			if j < n && (j == i+3 || i%4 == 1 || i%7 == 3) {
				targets = append(targets, name(j))
			}
		}
		switch {
		case i%7 == 3:
			list = append(list, ifNode(name(i), "{{ $json.x == 1 }}"))
			if len(targets) == 2 {
				conns[name(i)] = map[string]any{"true": targets[:1], "false": targets[1:]}
			}
		default:
			list = append(list, noop(name(i)))
			if len(targets) > 0 {
				conns[name(i)] = targets
			}
		}
	}
	if positions {
		for i, node := range list {
			node["position"] = []float64{float64((i+2)/3) * 220, float64((i+2)%3) * 160}
		}
	}
	return loadFlow(t, flowJSON(t, list, conns))
}

func TestRenderGraphPorts(t *testing.T) {
	list := []map[string]any{hook("Hook"), ifNode("Check", "{{ true }}"), noop("A"), noop("B"), ifNode("Guard", "{{ true }}"), noop("Oops")}
	list[4]["onError"] = "errorOutput"
	f := loadFlow(t, flowJSON(t, list, map[string]any{
		"Hook":  []string{"Check"},
		"Check": map[string]any{"true": []string{"A"}, "false": []string{"B"}},
		"A":     []string{"Guard"},
		"Guard": map[string]any{"error": []string{"Oops"}},
	}))
	drawn := graphNodes(t, parseSVG(t, renderGraph(f, graphOptions{})))
	labels := func(name string) []string {
		var out []string
		for _, l := range drawn[name].find(func(n *xnode) bool { return n.hasClass("port-label") }) {
			out = append(out, l.text)
		}
		return out
	}
	for name, want := range map[string][]string{
		"Check": {"true", "false"},
		"Guard": {"true", "false", "error"},
		"A":     nil,
		"Hook":  nil,
	} {
		if got := labels(name); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s port labels = %q, want %q", name, got, want)
		}
	}
	// Ports run down the right side in order; the false edge leaves from the lower port.
	outs := drawn["Check"].find(func(n *xnode) bool { return n.hasClass("port-out") })
	if len(outs) != 2 || !(outs[0].attr["cy"] < outs[1].attr["cy"]) {
		t.Errorf("Check's output ports: %v", outs)
	}
	if in := drawn["Hook"].find(func(n *xnode) bool { return n.hasClass("port-in") }); len(in) != 0 {
		t.Error("a trigger has an input port")
	}
	if !drawn["Hook"].hasClass("trigger") || drawn["A"].hasClass("trigger") {
		t.Error("trigger class on the wrong nodes")
	}
}

// runFlow runs f once with the real executor and no store.
func runFlow(t *testing.T, f *engine.Flow) *engine.Run {
	t.Helper()
	x := &engine.Executor{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Env: map[string]string{}}
	r, err := x.Run(context.Background(), f, engine.RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// edgeClasses maps "from → to" to the class of the edge group.
func edgeClasses(svg *xnode) map[string]string {
	out := map[string]string{}
	for _, g := range svg.find(func(n *xnode) bool { return n.name == "g" && n.hasClass("edge") }) {
		title := g.kids[0].text
		if i := strings.Index(title, " ("); i >= 0 && strings.Index(title, ")") > i {
			title = title[:i] + title[strings.Index(title, ")")+1:]
		}
		out[title] = g.attr["class"]
	}
	return out
}

func TestRenderGraphRun(t *testing.T) {
	f := branchyFlow(t)
	r := runFlow(t, f)
	if r.Status != engine.StatusSuccess {
		t.Fatalf("run: %s %s", r.Status, r.Error)
	}
	out := renderGraph(f, graphOptions{
		Run:      r,
		Selected: "No",
		NodeHref: func(name string) string { return "/runs/" + r.ID + "?node=" + url.QueryEscape(name) },
	})
	checkCSP(t, string(out))
	svg := parseSVG(t, out)
	if !svg.hasClass("run") {
		t.Error("svg lacks the run class")
	}
	drawn := graphNodes(t, svg)
	for name, want := range map[string]string{
		"Hook": "st-success", "Prepare": "st-success", "Check": "st-success", "No": "st-success",
		"Join": "st-success", "Yes": "st-skipped", "Other hook": "st-skipped", "Side": "st-skipped",
	} {
		if !drawn[name].hasClass(want) {
			t.Errorf("%s: class %q, want %s", name, drawn[name].attr["class"], want)
		}
	}
	if !drawn["No"].hasClass("selected") || drawn["Join"].hasClass("selected") {
		t.Error("selected class on the wrong nodes")
	}
	// Join ran twice: from No and straight from Check's false port.
	if meta := drawn["Join"].child("node-meta"); meta == nil || !strings.HasSuffix(meta.text, " ×2") {
		t.Errorf("Join meta = %v, want a duration and ×2", meta)
	}
	if meta := drawn["No"].child("node-meta"); meta == nil || strings.Contains(meta.text, "×") || !strings.Contains(meta.text, "s") {
		t.Errorf("No meta = %v, want a duration alone", meta)
	}
	if meta := drawn["Yes"].child("node-meta"); meta != nil {
		t.Errorf("a skipped node shows %q", meta.text)
	}

	edges := edgeClasses(svg)
	for edge, want := range map[string]string{
		"Hook → Prepare":       "edge-taken",
		"Check → No":           "edge-taken", // false
		"Check → Join":         "edge-taken", // false
		"No → Join":            "edge-taken",
		"Check → Yes":          "edge-dim", // true: no items
		"Yes → Join":           "edge-dim", // Yes never ran
		"Other hook → Prepare": "edge-dim",
	} {
		if !strings.Contains(" "+edges[edge]+" ", " "+want+" ") {
			t.Errorf("edge %s: class %q, want %s", edge, edges[edge], want)
		}
	}
	if counts := svg.find(func(n *xnode) bool { return n.hasClass("edge-count") }); len(counts) != 5 || counts[0].text != "1 item" {
		t.Errorf("edge counts: %d, first %v", len(counts), counts)
	}

	// Every node links, and says what happened for screen readers.
	links := svg.find(func(n *xnode) bool { return n.name == "a" })
	if len(links) != len(f.Nodes) {
		t.Fatalf("%d links, want %d", len(links), len(f.Nodes))
	}
	for _, a := range links {
		name := a.kids[0].attr["data-node"]
		if want := "/runs/" + r.ID + "?node=" + url.QueryEscape(name); a.attr["href"] != want {
			t.Errorf("href = %q, want %q", a.attr["href"], want)
		}
		if name == "Check" && a.attr["aria-label"] != "Check (if): success" {
			t.Errorf("aria-label = %q", a.attr["aria-label"])
		}
		if name == "Yes" && a.attr["aria-label"] != "Yes (noOp): not executed" {
			t.Errorf("aria-label = %q", a.attr["aria-label"])
		}
	}
}

func TestRenderGraphLastStatusAndRecordedPorts(t *testing.T) {
	f := branchyFlow(t)
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	r := &engine.Run{ID: "r1", Status: engine.StatusError, StartedAt: at, Nodes: []engine.NodeRun{
		{Seq: 0, Node: "Hook", Status: engine.StatusSuccess, OutputCounts: []int{1}, Ports: []string{"main"}},
		{Seq: 1, Node: "Prepare", Status: engine.StatusSuccess, OutputCounts: []int{1}},
		// A record without port names: matched by index, so port 0 (true) carried the item.
		{Seq: 2, Node: "Check", Status: engine.StatusSuccess, OutputCounts: []int{1, 0}},
		{Seq: 3, Node: "Yes", Status: engine.StatusSuccess, OutputCounts: []int{1}, Ports: []string{"main"}},
		{Seq: 4, Node: "Join", Status: engine.StatusSuccess, DurationMicros: 1500},
		{Seq: 5, Node: "Join", Status: engine.StatusError, DurationMicros: 2000, Error: "boom"},
		{Seq: 6, Node: "Lonely", Status: engine.StatusRunning},
		{Seq: 7, Node: "Gone from the flow", Status: engine.StatusSuccess},
		// Sent an item to Prepare and Side, but the run ended before Side ran.
		{Seq: 8, Node: "Other hook", Status: engine.StatusSuccess, OutputCounts: []int{1}, Ports: []string{"main"}},
		{Seq: 9, Node: "Feeds Join", Status: "<weird>"},
	}}
	svg := parseSVG(t, renderGraph(f, graphOptions{Run: r}))
	drawn := graphNodes(t, svg)
	if !drawn["Join"].hasClass("st-error") {
		t.Errorf("Join: class %q, want its last status st-error", drawn["Join"].attr["class"])
	}
	if got := drawn["Join"].child("node-meta").text; got != "3.50 ms ×2" {
		t.Errorf("Join meta = %q", got)
	}
	if !strings.Contains(drawn["Join"].kids[0].text, "boom") {
		t.Errorf("Join title %q lacks the error", drawn["Join"].kids[0].text)
	}
	if !drawn["Lonely"].hasClass("st-running") || drawn["Lonely"].child("node-meta").text != "running…" {
		t.Errorf("Lonely: %q", drawn["Lonely"].attr["class"])
	}
	if !drawn["Feeds Join"].hasClass("st-unknown") || !strings.HasSuffix(drawn["Feeds Join"].attr["aria-label"], ": <weird>") {
		t.Errorf("Feeds Join: class %q, aria-label %q", drawn["Feeds Join"].attr["class"], drawn["Feeds Join"].attr["aria-label"])
	}
	edges := edgeClasses(svg)
	for edge, want := range map[string]string{
		"Check → Yes":          "edge-taken", // port 0 by index
		"Check → No":           "edge-dim",
		"Other hook → Prepare": "edge-taken",
		"Other hook → Side":    "edge-dim", // Side never ran
	} {
		if !strings.Contains(" "+edges[edge]+" ", " "+want+" ") {
			t.Errorf("edge %s: class %q, want %s", edge, edges[edge], want)
		}
	}
	if _, ok := drawn["Gone from the flow"]; ok {
		t.Error("drew a node the flow does not have")
	}
}

func TestRenderGraphDisabled(t *testing.T) {
	list := []map[string]any{hook("Hook"), noop("Off")}
	list[1]["disabled"] = true
	f := loadFlow(t, flowJSON(t, list, map[string]any{"Hook": []string{"Off"}}))
	drawn := graphNodes(t, parseSVG(t, renderGraph(f, graphOptions{})))
	if !drawn["Off"].hasClass("disabled") || drawn["Hook"].hasClass("disabled") {
		t.Error("disabled class on the wrong nodes")
	}
	if got := drawn["Off"].child("node-type").text; got != "noOp · disabled" {
		t.Errorf("type line = %q", got)
	}
	if got := drawn["Off"].attr["aria-label"]; got != "Off (noOp): disabled" {
		t.Errorf("aria-label = %q", got)
	}
}

func TestRenderGraphEscapes(t *testing.T) {
	evil := `<script>x</script> & "q"`
	long := strings.Repeat("very long name ", 5) + "end"
	list := []map[string]any{hook(evil), noop("it's\x01 odd"), noop(long), noop("<script>x</script> ' & \"q\"")}
	f := loadFlow(t, flowJSON(t, list, map[string]any{evil: []string{"it's\x01 odd", long}, long: []string{list[3]["name"].(string)}}))
	f.Name = `</svg><img src=x onerror=alert(1)>`
	out := renderGraph(f, graphOptions{
		Selected: evil,
		NodeHref: func(name string) string {
			switch {
			case name == long:
				return "javascript:alert(1)"
			case strings.ContainsRune(name, 1):
				return "/flows/test?node=" + url.QueryEscape(name) // a control character does not parse
			}
			return "/flows/test?node=" + name // unescaped on purpose: the renderer escapes
		},
	})
	for _, bad := range []string{"<script", "<img", "javascript:"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("output contains %q:\n%s", bad, out)
		}
	}
	svg := parseSVG(t, out)
	drawn := graphNodes(t, svg)
	for _, n := range f.Nodes {
		d, ok := drawn[strings.ReplaceAll(n.Name, "\x01", "\uFFFD")]
		if !ok {
			t.Errorf("no node with data-node %q; have %v", n.Name, drawn)
			continue
		}
		if !strings.HasPrefix(d.kids[0].text, strings.ReplaceAll(n.Name, "\x01", "\uFFFD")+" (") {
			t.Errorf("title = %q", d.kids[0].text)
		}
		if !strings.HasPrefix(d.attr["id"], "node-") || strings.ContainsAny(d.attr["id"], `<>&"' `) {
			t.Errorf("id = %q", d.attr["id"])
		}
	}
	if got := drawn[evil].child("node-name").text; got != "<script>x</script>…" {
		t.Errorf("evil name drawn as %q", got)
	}
	if got := drawn[long].child("node-name").text; !strings.HasSuffix(got, "…") || len(got) >= len(long) {
		t.Errorf("long name drawn as %q", got)
	}
	// Two names that make one slug still get two ids.
	if a, b := drawn[evil].attr["id"], drawn[list[3]["name"].(string)].attr["id"]; a == b {
		t.Errorf("duplicate id %q", a)
	}
	links := svg.find(func(n *xnode) bool { return n.name == "a" })
	if len(links) != 3 {
		t.Errorf("%d links, want 3 (the javascript: one dropped)", len(links))
	}
	if links[0].attr["href"] != "/flows/test?node="+evil {
		t.Errorf("href = %q", links[0].attr["href"])
	}
}

func TestRenderGraphCycle(t *testing.T) {
	// The loader rejects cycles; the renderer must still cope with a hand-built flow.
	reg := nodes.NewRegistry()
	noOp, webhook := reg.Lookup("noOp"), reg.Lookup("webhook")
	if noOp == nil || webhook == nil {
		t.Fatal("registry lacks noOp or webhook")
	}
	mk := func(name string, typ *engine.NodeType) *engine.FlowNode {
		return &engine.FlowNode{Name: name, Type: typ, TypeName: typ.Name, Ports: typ.Ports(), Next: make([][]*engine.FlowNode, len(typ.Ports()))}
	}
	start, a, b, c, self := mk("start", webhook), mk("a", noOp), mk("b", noOp), mk("c", noOp), mk("self", noOp)
	start.Next[0] = []*engine.FlowNode{a}
	a.Next[0] = []*engine.FlowNode{b}
	b.Next[0] = []*engine.FlowNode{c, self}
	c.Next[0] = []*engine.FlowNode{a}
	self.Next[0] = []*engine.FlowNode{self}
	// island is a cycle no root reaches.
	i1, i2 := mk("i1", noOp), mk("i2", noOp)
	i1.Next[0] = []*engine.FlowNode{i2}
	i2.Next[0] = []*engine.FlowNode{i1}
	f := &engine.Flow{ID: "cyclic", Nodes: []*engine.FlowNode{start, a, b, c, self, i1, i2}}

	svg, drawn := renderChecked(t, f)
	if !(drawn["start"].x < drawn["a"].x && drawn["a"].x < drawn["b"].x && drawn["b"].x < drawn["c"].x) {
		t.Errorf("chain not left to right: %v", drawn)
	}
	edges := edgeClasses(svg)
	for _, e := range []string{"c → a", "self → self"} {
		if !strings.Contains(edges[e], "edge-back") {
			t.Errorf("edge %s: class %q, want edge-back", e, edges[e])
		}
	}
	if strings.Contains(edges["a → b"], "edge-back") {
		t.Errorf("forward edge a → b drawn as back edge")
	}
	// The back edge c → a loops under both nodes instead of crossing them, inside the viewBox.
	_, h := viewBox(t, svg)
	floor := max(drawn["a"].y, drawn["c"].y) + nodeH + nodeMetaH
	for _, g := range svg.find(func(n *xnode) bool { return n.hasClass("edge-back") }) {
		if g.kids[0].text != "c → a" {
			continue
		}
		low := 0.0
		for _, pair := range strings.Fields(strings.NewReplacer("M", " ", "C", " ", "L", " ").Replace(g.kids[1].attr["d"])) {
			var x, y float64
			if _, err := fmt.Sscanf(pair, "%g,%g", &x, &y); err != nil {
				t.Fatalf("path %q: %v", g.kids[1].attr["d"], err)
			}
			low = max(low, y)
		}
		if low <= floor || low > h {
			t.Errorf("back edge reaches down to %g: want below %g and inside the height %g", low, floor, h)
		}
	}
}

// TestAutoLayoutRandomDAGs checks the layout's promises on DAGs whose file order is not
// their topological order: every edge points right, and no boxes overlap.
func TestAutoLayoutRandomDAGs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		n := 2 + rng.IntN(40)
		// Node i may feed only nodes after it in rank; the file lists them shuffled.
		rankOf := rng.Perm(n)
		var edges []gEdge
		for a := range n {
			for b := range n {
				if rankOf[a] < rankOf[b] && rng.IntN(n) < 2 {
					edges = append(edges, gEdge{from: a, to: b})
				}
			}
		}
		trigger := make([]bool, n)
		trigger[rng.IntN(n)] = true
		pts := autoLayout(n, edges, trigger)
		for _, e := range edges {
			if !(pts[e.from].x < pts[e.to].x) {
				t.Fatalf("round %d: edge %d → %d points left: x %g → %g", round, e.from, e.to, pts[e.from].x, pts[e.to].x)
			}
		}
		for i := range n {
			for j := range i {
				a, b := pts[i], pts[j]
				if math.Abs(a.x-b.x) < nodeW && math.Abs(a.y-b.y) < nodeH+nodeMetaH {
					t.Fatalf("round %d: nodes %d (%v) and %d (%v) overlap", round, i, a, j, b)
				}
			}
		}
	}
}

func TestRenderGraphNothingToDraw(t *testing.T) {
	for name, f := range map[string]*engine.Flow{"nil": nil, "empty": {ID: "x"}} {
		t.Run(name, func(t *testing.T) {
			svg := parseSVG(t, renderGraph(f, graphOptions{Run: &engine.Run{}}))
			if !strings.Contains(svg.allText(), "no nodes") {
				t.Errorf("text = %q", svg.allText())
			}
		})
	}
}

func TestRenderWaterfall(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	r := &engine.Run{ID: "r1", Status: engine.StatusError, StartedAt: at, FinishedAt: at.Add(100 * time.Millisecond), Nodes: []engine.NodeRun{
		{Seq: 0, Node: "Hook", Type: "webhook", Status: engine.StatusSuccess, StartedAt: at, DurationMicros: 2},
		{Seq: 1, Node: "check <token>", Type: "if", Status: engine.StatusSuccess, StartedAt: at.Add(10 * time.Millisecond), DurationMicros: 20_000},
		{Seq: 2, Node: "check <token>", Type: "if", Status: engine.StatusSuccess, StartedAt: at.Add(30 * time.Millisecond), DurationMicros: 10_000, Recheck: true},
		{Seq: 3, Node: "fetch", Type: "httpRequest", Status: engine.StatusError, StartedAt: at.Add(50 * time.Millisecond), DurationMicros: 50_000, Tries: 3, Error: "status 500"},
	}}
	out := renderWaterfall(r, func(seq int) string { return "/runs/r1/nodes/" + strconv.Itoa(seq) })
	checkCSP(t, string(out))
	svg := parseSVG(t, out)
	rows := svg.find(func(n *xnode) bool { return n.hasClass("wf-row") })
	if len(rows) != len(r.Nodes) {
		t.Fatalf("%d rows, want %d", len(rows), len(r.Nodes))
	}
	type bar struct{ x, w float64 }
	var bars []bar
	for i, row := range rows {
		nr := r.Nodes[i]
		if row.attr["data-seq"] != strconv.Itoa(nr.Seq) || row.attr["data-node"] != nr.Node {
			t.Errorf("row %d: seq %q node %q", i, row.attr["data-seq"], row.attr["data-node"])
		}
		if !row.hasClass(statusClass(nr.Status)) || row.hasClass("recheck") != nr.Recheck {
			t.Errorf("row %d: class %q", i, row.attr["class"])
		}
		if got, want := row.child("wf-dur").text, formatMicros(nr.DurationMicros); got != want {
			t.Errorf("row %d: duration %q, want %q", i, got, want)
		}
		if !strings.Contains(row.child("wf-label").allText(), nr.Node) {
			t.Errorf("row %d: label %q", i, row.child("wf-label").allText())
		}
		b := row.child("wf-bar")
		x, _ := strconv.ParseFloat(b.attr["x"], 64)
		w, _ := strconv.ParseFloat(b.attr["width"], 64)
		bars = append(bars, bar{x, w})
	}
	if !strings.Contains(rows[2].child("wf-label").allText(), "↻") {
		t.Error("recheck row not marked")
	}
	if !strings.Contains(rows[3].kids[0].text, "status 500") || !strings.Contains(rows[3].kids[0].text, "3 tries") {
		t.Errorf("error row title = %q", rows[3].kids[0].text)
	}
	// Offsets and widths are to scale: the run is 100 ms over wfPlotW.
	perMs := wfPlotW / 100
	for i, want := range []bar{{0, wfMinBarW}, {10 * perMs, 20 * perMs}, {30 * perMs, 10 * perMs}, {50 * perMs, 50 * perMs}} {
		if d := bars[i].x - wfLabelW - want.x; d < -0.1 || d > 0.1 || bars[i].w < want.w-0.1 || bars[i].w > want.w+0.1 {
			t.Errorf("bar %d at +%g wide %g, want +%g wide %g", i, bars[i].x-wfLabelW, bars[i].w, want.x, want.w)
		}
	}
	links := svg.find(func(n *xnode) bool { return n.name == "a" })
	if len(links) != 4 || links[3].attr["href"] != "/runs/r1/nodes/3" || links[3].attr["aria-label"] != "#3 fetch: error, 50.0 ms" {
		t.Errorf("links: %d, last %v", len(links), links[len(links)-1].attr)
	}
	var ticks []string
	for _, tk := range svg.find(func(n *xnode) bool { return n.hasClass("wf-tick") }) {
		ticks = append(ticks, tk.text)
	}
	if got := strings.Join(ticks, " | "); got != "0 µs | 20.0 ms | 40.0 ms | 60.0 ms | 80.0 ms | 100 ms" {
		t.Errorf("ticks = %s", got)
	}
}

func TestRenderWaterfallEdgeCases(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		run      *engine.Run
		wantText string
	}{
		{"nil", nil, "No run."},
		{"no nodes", &engine.Run{Status: engine.StatusRunning, StartedAt: time.Now()}, "No node has run yet."},
		{"zero length", &engine.Run{Status: engine.StatusSuccess, StartedAt: at, FinishedAt: at, Nodes: []engine.NodeRun{
			{Node: "a", Status: engine.StatusSuccess, StartedAt: at},
			{Seq: 1, Node: "b", Status: engine.StatusSuccess, StartedAt: at},
		}}, "0 µs"},
		{"still running", &engine.Run{Status: engine.StatusRunning, StartedAt: time.Now().Add(-time.Second), Nodes: []engine.NodeRun{
			{Node: "a", Status: engine.StatusSuccess, StartedAt: time.Now().Add(-time.Second), DurationMicros: 1000},
			{Seq: 1, Node: "b", Status: engine.StatusRunning, StartedAt: time.Now().Add(-time.Second / 2)},
		}}, "running…"},
		{"node times unset", &engine.Run{Status: engine.StatusCrashed, StartedAt: at, Nodes: []engine.NodeRun{
			{Node: "a", Status: engine.StatusCrashed, DurationMicros: -5},
		}}, "0 µs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := renderWaterfall(tc.run, nil)
			svg := parseSVG(t, out)
			if !strings.Contains(svg.allText(), tc.wantText) {
				t.Errorf("text %q lacks %q", svg.allText(), tc.wantText)
			}
			for _, bad := range []string{"NaN", "Inf", "<a "} {
				if strings.Contains(string(out), bad) {
					t.Errorf("output contains %q:\n%s", bad, out)
				}
			}
			for _, b := range svg.find(func(n *xnode) bool { return n.hasClass("wf-bar") }) {
				x, _ := strconv.ParseFloat(b.attr["x"], 64)
				w, _ := strconv.ParseFloat(b.attr["width"], 64)
				if w < wfMinBarW || x < wfLabelW || x+w > wfLabelW+wfPlotW+0.1 {
					t.Errorf("bar at %g wide %g: outside the plot", x, w)
				}
			}
		})
	}
}

func TestTickStep(t *testing.T) {
	for _, span := range []int64{1, 3, 7, 999, 1000, 12_345, 1_000_000, 59_000_000, 3_600_000_000, 1 << 50} {
		step := tickStep(span)
		if parts := span / step; step <= 0 || parts < 1 || parts > 5 {
			t.Errorf("tickStep(%d) = %d: %d parts", span, step, parts)
		}
	}
	if tickStep(0) != 0 {
		t.Error("tickStep(0) != 0")
	}
}

func BenchmarkRenderGraph(b *testing.B) {
	auto, placed := bigFlow(b, 200, false), bigFlow(b, 200, true)
	var nrs []engine.NodeRun
	for i, n := range auto.Nodes {
		nrs = append(nrs, engine.NodeRun{Seq: i, Node: n.Name, Status: engine.StatusSuccess, DurationMicros: int64(i * 100), OutputCounts: []int{1, 1}})
	}
	run := &engine.Run{Status: engine.StatusSuccess, Nodes: nrs}
	for _, bc := range []struct {
		name string
		f    *engine.Flow
		o    graphOptions
	}{
		{"200 nodes laid out", auto, graphOptions{}},
		{"200 nodes placed", placed, graphOptions{}},
		{"200 nodes with run", auto, graphOptions{Run: run, NodeHref: func(n string) string { return "/n/" + n }}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				renderGraph(bc.f, bc.o)
			}
		})
	}
	b.Run("waterfall 200 rows", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			renderWaterfall(run, func(seq int) string { return "/s/" + strconv.Itoa(seq) })
		}
	})
}
