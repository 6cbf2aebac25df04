package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
)

// The flow graph and the run waterfall are drawn on the server as inline SVG: no script, no
// style attributes (the page's CSP forbids both), only classes that web/assets/graph.css
// styles and SVG presentation attributes as a fallback when the stylesheet is missing.

// graphOptions says what renderGraph draws on top of the flow.
type graphOptions struct {
	Run      *engine.Run              // nil on the flow page; else color nodes/edges by what the run did
	Selected string                   // node name shown as selected ("" for none)
	NodeHref func(name string) string // link target for each node; nil or "" means no link
}

// Geometry of the graph, in SVG user units (CSS pixels at scale 1).
const (
	nodeW       = 184.0
	nodeH       = 60.0
	nodeMetaH   = 20.0 // under a node: its run duration
	portR       = 4.0
	graphMargin = 24.0
	// portLabelW is room right of a node for its port labels ("false", "error").
	portLabelW = 44.0
	// Auto layout: the gap between layers and between nodes of one layer.
	layerGap = 84.0
	rowGap   = 28.0
	// n8n's boxes are 100 wide and usually 200-250 apart; ours are wider, so file x
	// coordinates are stretched by posStretchX to keep room for edges and their labels.
	posStretchX = 1.3
	// Positions from the file are then scaled up (never down) until boxes keep these gaps; a
	// flow that needs more than maxPosScale (nodes on top of each other) is laid out instead.
	posGapX     = 24.0
	posGapY     = 8.0
	maxPosScale = 3.0
)

// gPoint is a node's top-left corner.
type gPoint struct{ x, y float64 }

// gEdge is one connection: node from's output port to node to, by index in Flow.Nodes.
type gEdge struct{ from, port, to int }

// flowEdges lists f's connections in file order, skipping any that point outside f.
func flowEdges(f *engine.Flow) []gEdge {
	idx := make(map[*engine.FlowNode]int, len(f.Nodes))
	for i, n := range f.Nodes {
		idx[n] = i
	}
	var edges []gEdge
	for i, n := range f.Nodes {
		for p, targets := range n.Next {
			for _, t := range targets {
				if j, ok := idx[t]; ok {
					edges = append(edges, gEdge{from: i, port: p, to: j})
				}
			}
		}
	}
	return edges
}

// layoutFlow places every node of f: where the file says when every node has a position,
// else by autoLayout. The result is normalised so the content starts at graphMargin.
func layoutFlow(f *engine.Flow, edges []gEdge) []gPoint {
	pts := positioned(f)
	if pts == nil {
		roots := make([]bool, len(f.Nodes))
		for i, n := range f.Nodes {
			roots[i] = n.Type != nil && n.Type.Trigger
		}
		pts = autoLayout(len(f.Nodes), edges, roots)
	}
	minX, minY := math.Inf(1), math.Inf(1)
	for _, p := range pts {
		minX, minY = min(minX, p.x), min(minY, p.y)
	}
	for i := range pts {
		pts[i].x += graphMargin - minX
		pts[i].y += graphMargin - minY
	}
	return pts
}

// positioned returns the file's positions, stretched and scaled so no two boxes (with the run
// line under them) overlap, or nil when a node has no position or nodes sit too close to be separated
// by a modest scale. Scaling is the same for every node, so the drawing keeps the file's
// relative order.
func positioned(f *engine.Flow) []gPoint {
	pts := make([]gPoint, len(f.Nodes))
	for i, n := range f.Nodes {
		if n.Position == nil || !finite(n.Position[0]) || !finite(n.Position[1]) {
			return nil
		}
		pts[i] = gPoint{n.Position[0] * posStretchX, n.Position[1]}
	}
	// Only pairs that overlap at scale 1 can overlap at a larger scale, and they are less than
	// a footprint apart in x: sweep over the nodes sorted by x.
	fw, fh := nodeW+posGapX, nodeH+nodeMetaH+posGapY
	order := make([]int, len(pts))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmpFloat(pts[a].x, pts[b].x) })
	scale := 1.0
	for a, i := range order {
		for _, j := range order[a+1:] {
			dx := pts[j].x - pts[i].x
			if dx >= fw {
				break
			}
			dy := math.Abs(pts[j].y - pts[i].y)
			if dy >= fh {
				continue
			}
			need := math.Inf(1)
			if dx > 0 {
				need = fw / dx
			}
			if dy > 0 {
				need = min(need, fh/dy)
			}
			if need > maxPosScale {
				return nil
			}
			scale = max(scale, need)
		}
	}
	for i := range pts {
		pts[i].x *= scale
		pts[i].y *= scale
	}
	return pts
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// autoLayout places n nodes left to right in layers by longest path from the roots (the
// triggers, then nodes nothing feeds, in file order). Edges that close a cycle are ignored.
// Within a layer nodes start in file order, are reordered by the barycentre of their
// neighbours, then each is placed level with the nodes that feed it where the layer's
// spacing allows. Boxes never overlap: layers are a column apart and nodes of one layer at
// least a row apart.
func autoLayout(n int, edges []gEdge, trigger []bool) []gPoint {
	succ := make([][]int, n)
	pred := make([][]int, n)
	indeg := make([]int, n)
	for _, e := range edges {
		if e.from == e.to || slices.Contains(succ[e.from], e.to) {
			continue
		}
		succ[e.from] = append(succ[e.from], e.to)
		indeg[e.to]++
	}

	// Depth-first from the roots; an edge to a node still on the stack is a back edge.
	var starts []int
	for i := range n {
		if trigger[i] {
			starts = append(starts, i)
		}
	}
	for i := range n {
		if !trigger[i] && indeg[i] == 0 {
			starts = append(starts, i)
		}
	}
	for i := range n {
		starts = append(starts, i) // whatever only a cycle reaches
	}
	const (
		unseen = iota
		onStack
		done
	)
	state := make([]int, n)
	back := map[[2]int]bool{}
	type frame struct{ node, next int }
	for _, s := range starts {
		if state[s] != unseen {
			continue
		}
		stack := []frame{{s, 0}}
		state[s] = onStack
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == len(succ[top.node]) {
				state[top.node] = done
				stack = stack[:len(stack)-1]
				continue
			}
			v := succ[top.node][top.next]
			top.next++
			switch state[v] {
			case onStack:
				back[[2]int{top.node, v}] = true
			case unseen:
				state[v] = onStack
				stack = append(stack, frame{v, 0})
			}
		}
	}
	for u := range n {
		succ[u] = slices.DeleteFunc(succ[u], func(v int) bool { return back[[2]int{u, v}] })
		for _, v := range succ[u] {
			pred[v] = append(pred[v], u)
		}
	}

	// Longest path layering over the acyclic rest, in topological order (Kahn).
	layer := make([]int, n)
	remaining := make([]int, n)
	var queue, topo []int
	for v := range n {
		remaining[v] = len(pred[v])
		if remaining[v] == 0 {
			queue = append(queue, v)
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		topo = append(topo, u)
		for _, v := range succ[u] {
			layer[v] = max(layer[v], layer[u]+1)
			if remaining[v]--; remaining[v] == 0 {
				queue = append(queue, v)
			}
		}
	}
	// A root that is not a trigger sits just before the first node it feeds, not in column 0.
	for i := len(topo) - 1; i >= 0; i-- {
		u := topo[i]
		if trigger[u] || len(pred[u]) > 0 || len(succ[u]) == 0 {
			continue
		}
		first := math.MaxInt
		for _, v := range succ[u] {
			first = min(first, layer[v])
		}
		layer[u] = first - 1
	}

	nLayers := 0
	for _, l := range layer {
		nLayers = max(nLayers, l+1)
	}
	layers := make([][]int, nLayers)
	for v := range n {
		layers[layer[v]] = append(layers[layer[v]], v)
	}

	// rank is a node's centred position in its layer; barycentre sweeps reorder by it.
	rank := make([]float64, n)
	setRanks := func(l []int) {
		for i, v := range l {
			rank[v] = float64(i) - float64(len(l)-1)/2
		}
	}
	for _, l := range layers {
		setRanks(l)
	}
	sweep := func(l []int, neighbours [][]int) {
		bary := make(map[int]float64, len(l))
		for _, v := range l {
			bary[v] = meanOf(neighbours[v], func(u int) float64 { return rank[u] }, rank[v])
		}
		slices.SortStableFunc(l, func(a, b int) int { return cmpFloat(bary[a], bary[b]) })
		setRanks(l)
	}
	for range 4 {
		for i := 1; i < nLayers; i++ {
			sweep(layers[i], pred)
		}
		for i := nLayers - 2; i >= 0; i-- {
			sweep(layers[i], succ)
		}
	}

	// y: each node wants the mean y of its predecessors; keep the layer's order and spacing,
	// then shift the layer so on average it sits where it wants to.
	pitch := nodeH + nodeMetaH + rowGap
	pts := make([]gPoint, n)
	for li, l := range layers {
		want := make([]float64, len(l))
		for i, v := range l {
			want[i] = meanOf(pred[v], func(u int) float64 { return pts[u].y }, float64(i)*pitch)
		}
		ys := make([]float64, len(l))
		shift := 0.0
		for i := range l {
			ys[i] = want[i]
			if i > 0 {
				ys[i] = max(want[i], ys[i-1]+pitch)
			}
			shift += want[i] - ys[i]
		}
		shift /= float64(len(l))
		for i, v := range l {
			pts[v] = gPoint{x: float64(li) * (nodeW + layerGap), y: ys[i] + shift}
		}
	}
	return pts
}

// meanOf is the mean of value over nodes, or otherwise when there are none.
func meanOf(nodes []int, value func(int) float64, otherwise float64) float64 {
	if len(nodes) == 0 {
		return otherwise
	}
	sum := 0.0
	for _, u := range nodes {
		sum += value(u)
	}
	return sum / float64(len(nodes))
}

// gNodeRun sums up what a run did with one node.
type gNodeRun struct {
	count   int
	last    *engine.NodeRun
	totalUs int64
	// sent counts the items sent per output port over all executions, keyed by the port's
	// name and by "#" and its index.
	sent map[string]int
}

func summariseRun(r *engine.Run) map[string]*gNodeRun {
	out := map[string]*gNodeRun{}
	for i := range r.Nodes {
		nr := &r.Nodes[i]
		s := out[nr.Node]
		if s == nil {
			s = &gNodeRun{sent: map[string]int{}}
			out[nr.Node] = s
		}
		s.count++
		s.last = nr
		s.totalUs += nr.DurationMicros
		for p := range max(len(nr.OutputCounts), len(nr.Output)) {
			var c int
			if p < len(nr.OutputCounts) {
				c = nr.OutputCounts[p]
			} else {
				c = len(nr.Output[p])
			}
			s.sent["#"+strconv.Itoa(p)] += c
			if p < len(nr.Ports) {
				s.sent[nr.Ports[p]] += c
			}
		}
	}
	return out
}

// sentOn is how many items the run's executions of n sent on its port p: matched by the
// port's name, or by index for records that name no ports.
func (s *gNodeRun) sentOn(n *engine.FlowNode, p int) int {
	if c, ok := s.sent[portName(n, p)]; ok {
		return c
	}
	return s.sent["#"+strconv.Itoa(p)]
}

// portName is the name of node n's port p, as NodeRun.Ports names it: the flow's name, or
// the index when the flow names none.
func portName(n *engine.FlowNode, p int) string {
	if p < len(n.Ports) {
		return n.Ports[p]
	}
	return strconv.Itoa(p)
}

// statusClass is the CSS class of a node or row with that status.
func statusClass(s engine.RunStatus) string {
	switch s {
	case engine.StatusSuccess, engine.StatusError, engine.StatusRunning, engine.StatusCanceled, engine.StatusCrashed:
		return "st-" + string(s)
	}
	return "st-unknown"
}

// renderGraph returns one <svg> element (responsive: viewBox + class, no fixed width) drawing
// f: a box per node, an arrow per connection. With o.Run it shows what that run did: each
// node's last status, time and execution count, and which connections carried items. Nodes
// of the run that f no longer has are left out. A nil or empty flow draws a short note.
func renderGraph(f *engine.Flow, o graphOptions) template.HTML {
	if f == nil || len(f.Nodes) == 0 {
		return svgNote("flow-graph", "This flow has no nodes.")
	}
	edges := flowEdges(f)
	pts := layoutFlow(f, edges)
	var runs map[string]*gNodeRun
	if o.Run != nil {
		runs = summariseRun(o.Run)
	}

	idPrefix := "fg-" + slug(f.ID)
	w, h := 0.0, 0.0
	for _, p := range pts {
		w = max(w, p.x+nodeW+portLabelW+graphMargin)
		h = max(h, p.y+nodeH+nodeMetaH+graphMargin)
	}

	// Edges first, under the nodes; taken ones last, over the others.
	var plain, taken strings.Builder
	for _, e := range edges {
		from, to := f.Nodes[e.from], f.Nodes[e.to]
		x1 := pts[e.from].x + nodeW
		y1 := pts[e.from].y + portY(e.port, portCount(from))
		x2 := pts[e.to].x - portR
		y2 := pts[e.to].y + nodeH/2
		d, mx, my, low := edgePath(x1, y1, x2, y2, max(pts[e.from].y, pts[e.to].y)+nodeH+nodeMetaH)
		h = max(h, low+graphMargin)

		class, marker, count := "edge", "arrow", -1
		if runs != nil {
			class, marker = "edge edge-dim", "arrow-dim"
			if s := runs[from.Name]; s != nil && runs[to.Name] != nil && s.sentOn(from, e.port) > 0 {
				class, marker, count = "edge edge-taken", "arrow-taken", s.sentOn(from, e.port)
			}
		}
		if x2 < x1+16 {
			class += " edge-back"
		}
		b := &plain
		if count >= 0 {
			b = &taken
		}
		label := from.Name + " → " + to.Name
		if portCount(from) > 1 {
			label = from.Name + " (" + portName(from, e.port) + ") → " + to.Name
		}
		fmt.Fprintf(b, `<g class="%s"><title>%s</title><path d="%s" fill="none" stroke="#8a94a6" marker-end="url(#%s-%s)"/>`,
			class, esc(label), d, idPrefix, marker)
		if count >= 0 {
			fmt.Fprintf(b, `<text class="edge-count" x="%s" y="%s" text-anchor="middle">%s</text>`,
				num(mx), num(my-6), unitCount(int64(count), "item"))
		}
		b.WriteString("</g>")
	}

	var sb strings.Builder
	class := "flow-graph " + widthClass(w)
	if runs != nil {
		class += " run"
	}
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" class="%s" viewBox="0 0 %s %s" role="group" aria-label="%s" font-family="system-ui, sans-serif" font-size="12">`,
		class, num(w), num(h), esc("Graph of flow "+flowTitle(f)))
	sb.WriteString("<defs>")
	for _, m := range []string{"arrow", "arrow-dim", "arrow-taken"} {
		fmt.Fprintf(&sb, `<marker id="%s-%s" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto"><path class="arrowhead %s" d="M0,1 L9,5 L0,9 z" fill="#8a94a6"/></marker>`,
			idPrefix, m, m)
	}
	sb.WriteString("</defs>")
	sb.WriteString(`<g class="edges">`)
	sb.WriteString(plain.String())
	sb.WriteString(taken.String())
	sb.WriteString(`</g><g class="nodes">`)
	ids := map[string]bool{}
	for i, n := range f.Nodes {
		var s *gNodeRun
		if runs != nil {
			s = runs[n.Name]
		}
		writeNode(&sb, n, pts[i], s, runs != nil, o, uniqueID(ids, "node-"+slug(n.Name)))
	}
	sb.WriteString("</g></svg>")
	return template.HTML(sb.String())
}

func flowTitle(f *engine.Flow) string {
	if f.Name != "" {
		return f.Name
	}
	return f.ID
}

func nodeTypeName(n *engine.FlowNode) string {
	if n.TypeName != "" {
		return n.TypeName
	}
	if n.Type != nil {
		return n.Type.Name
	}
	return "?"
}

func portCount(n *engine.FlowNode) int {
	return max(len(n.Ports), len(n.Next), 1)
}

// portY is the y of output port p of k, from the node's top: spread evenly down the right side.
func portY(p, k int) float64 {
	return nodeH * float64(p+1) / float64(k+1)
}

// edgePath returns a path from an output port (x1, y1) to an input (x2, y2), the point where
// its label goes, and its lowest y. Forward edges are one cubic Bézier leaving and entering
// horizontally. An edge to a node left of (or level with) its source loops under both
// nodes, at floor, so it never crosses them.
func edgePath(x1, y1, x2, y2, floor float64) (d string, mx, my, low float64) {
	if x2 >= x1+16 {
		c := max((x2-x1)/2, 24)
		d = fmt.Sprintf("M%s,%s C%s,%s %s,%s %s,%s", num(x1), num(y1), num(x1+c), num(y1), num(x2-c), num(y2), num(x2), num(y2))
		return d, (x1 + x2) / 2, (y1 + y2) / 2, max(y1, y2)
	}
	low = floor + 12
	const r = 40
	d = fmt.Sprintf("M%s,%s C%s,%s %s,%s %s,%s L%s,%s C%s,%s %s,%s %s,%s",
		num(x1), num(y1), num(x1+r), num(y1), num(x1+r), num(low), num(x1), num(low),
		num(x2), num(low), num(x2-r), num(low), num(x2-r), num(y2), num(x2), num(y2))
	return d, (x1 + x2) / 2, low, low
}

// writeNode draws one node at p. s is what the run did with it (nil: it did not run); inRun
// says whether a run is shown at all.
func writeNode(sb *strings.Builder, n *engine.FlowNode, p gPoint, s *gNodeRun, inRun bool, o graphOptions, id string) {
	typ := nodeTypeName(n)
	trigger := n.Type != nil && n.Type.Trigger
	classes := []string{"node"}
	if trigger {
		classes = append(classes, "trigger")
	}
	if n.Disabled {
		classes = append(classes, "disabled")
	}
	status, meta := "", ""
	title := n.Name + " (" + typ + ")"
	if n.Disabled {
		title += "\ndisabled"
	}
	if inRun {
		if s == nil {
			classes = append(classes, "st-skipped")
			status = "not executed"
		} else {
			classes = append(classes, statusClass(s.last.Status))
			status = string(s.last.Status)
			meta = formatMicros(s.totalUs)
			if s.last.Status == engine.StatusRunning {
				meta = "running…"
			}
			if s.count > 1 {
				meta += " ×" + strconv.Itoa(s.count)
			}
			title += "\n" + status + ", " + formatMicros(s.totalUs)
			if s.count > 1 {
				title += " in " + strconv.Itoa(s.count) + " executions"
			}
			if s.last.Error != "" {
				title += "\n" + truncateText(s.last.Error, 300)
			}
		}
	}
	if o.Selected != "" && o.Selected == n.Name {
		classes = append(classes, "selected")
	}

	aria := n.Name + " (" + typ + ")"
	switch {
	case status != "":
		aria += ": " + status
	case n.Disabled:
		aria += ": disabled"
	}
	href := ""
	if o.NodeHref != nil {
		href = safeHref(o.NodeHref(n.Name))
	}
	groupAttrs, closeLink := openLink(sb, href, aria)
	fmt.Fprintf(sb, `<g id="%s" class="%s" data-node="%s" transform="translate(%s,%s)"%s><title>%s</title>`,
		id, strings.Join(classes, " "), esc(n.Name), num(p.x), num(p.y), groupAttrs, esc(title))

	// The box: triggers have a round left side, as in n8n.
	if trigger {
		r := nodeH / 2
		fmt.Fprintf(sb, `<path class="node-box" d="M%s,0 H%s Q%s,0 %s,8 V%s Q%s,%s %s,%s H%s A%s,%s 0 0 1 %s,0 Z" fill="#fff" stroke="#8a94a6"/>`,
			num(r), num(nodeW-8), num(nodeW), num(nodeW), num(nodeH-8), num(nodeW), num(nodeH), num(nodeW-8), num(nodeH), num(r), num(r), num(r), num(r))
	} else {
		fmt.Fprintf(sb, `<rect class="node-box" width="%s" height="%s" rx="8" fill="#fff" stroke="#8a94a6"/>`, num(nodeW), num(nodeH))
	}
	textX := 14.0
	if trigger {
		fmt.Fprintf(sb, `<text class="node-icon" x="14" y="%s" font-size="16">⚡</text>`, num(nodeH/2+6))
		textX = 36
	}
	room := (nodeW - textX - 10) / 7.2 // characters of 13 px type that fit
	fmt.Fprintf(sb, `<text class="node-name" x="%s" y="26" font-size="13">%s</text>`, num(textX), esc(truncateText(n.Name, room)))
	typeLine := typ
	if n.Disabled {
		typeLine += " · disabled"
	}
	fmt.Fprintf(sb, `<text class="node-type" x="%s" y="44" font-size="11">%s</text>`, num(textX), esc(truncateText(typeLine, room*1.15)))

	if !trigger {
		fmt.Fprintf(sb, `<circle class="port port-in" cx="0" cy="%s" r="%s"/>`, num(nodeH/2), num(portR))
	}
	k := portCount(n)
	for i := range k {
		y := portY(i, k)
		fmt.Fprintf(sb, `<circle class="port port-out" cx="%s" cy="%s" r="%s"/>`, num(nodeW), num(y), num(portR))
		if k > 1 {
			fmt.Fprintf(sb, `<text class="port-label" x="%s" y="%s" font-size="10">%s</text>`,
				num(nodeW+7), num(y-5), esc(truncateText(portName(n, i), 6)))
		}
	}
	if meta != "" {
		fmt.Fprintf(sb, `<text class="node-meta" x="%s" y="%s" text-anchor="middle" font-size="11">%s</text>`,
			num(nodeW/2), num(nodeH+15), esc(meta))
	}
	sb.WriteString("</g>")
	sb.WriteString(closeLink)
}

// openLink starts a link to href when there is one, labelled aria for screen readers, and
// returns the attributes the linked group needs (without a link, the group carries the label
// itself) and what closes the link.
func openLink(sb *strings.Builder, href, aria string) (groupAttrs, closeLink string) {
	if href == "" {
		return ` role="group" aria-label="` + esc(aria) + `"`, ""
	}
	fmt.Fprintf(sb, `<a href="%s" aria-label="%s">`, esc(href), esc(aria))
	return "", "</a>"
}

// widthClass buckets a drawing's natural width, so the stylesheet can cap its displayed width
// near 1:1: a two-node flow should not be blown up to fill a wide page.
func widthClass(w float64) string {
	const step, buckets = 160.0, 16
	n := int(math.Ceil(w / step))
	if n > buckets {
		return "fg-wfull"
	}
	return "fg-w" + strconv.Itoa(max(n, 1))
}

// svgNote is a small SVG with one line of text, for things there is nothing to draw of.
func svgNote(class, msg string) template.HTML {
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" class="%s empty" viewBox="0 0 320 40" role="img" aria-label="%s" font-family="system-ui, sans-serif" font-size="13"><text class="note" x="12" y="24">%s</text></svg>`,
		class, esc(msg), esc(msg)))
}

// Waterfall geometry.
const (
	wfLabelW  = 220.0
	wfPlotW   = 560.0
	wfRightW  = 96.0 // room right of the plot for the last bar's duration
	wfRowH    = 24.0
	wfBarH    = 14.0
	wfAxisH   = 28.0
	wfMinBarW = 3.0
)

// renderWaterfall returns one <svg> timeline: a row per r.Nodes entry (execution order), bar offset by
// (StartedAt - r.StartedAt), width by DurationMicros, class by status, label with node name and duration.
// rowHref(seq) links a row (nil: no links).
//
// The time axis spans the run (for a run still going, up to now) or the last node's end,
// whichever is later; a node still running reaches to the end of the axis. Bars are at
// least wfMinBarW wide so microsecond nodes show. Recheck executions (under a lock) carry the
// class "recheck" and a ↻ after their name.
func renderWaterfall(r *engine.Run, rowHref func(seq int) string) template.HTML {
	if r == nil {
		return svgNote("waterfall", "No run.")
	}
	if len(r.Nodes) == 0 {
		return svgNote("waterfall", "No node has run yet.")
	}
	offsetUs := func(nr *engine.NodeRun) int64 {
		if nr.StartedAt.IsZero() || nr.StartedAt.Before(r.StartedAt) {
			return 0
		}
		return nr.StartedAt.Sub(r.StartedAt).Microseconds()
	}
	var spanUs int64
	if !r.FinishedAt.IsZero() || r.Status == engine.StatusRunning {
		spanUs = max(r.Duration().Microseconds(), 0)
	}
	for i := range r.Nodes {
		nr := &r.Nodes[i]
		spanUs = max(spanUs, offsetUs(nr)+max(nr.DurationMicros, 0))
	}
	scale := wfPlotW / float64(max(spanUs, 1))
	w := wfLabelW + wfPlotW + wfRightW
	h := wfAxisH + float64(len(r.Nodes))*wfRowH + 8

	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" class="waterfall" viewBox="0 0 %s %s" role="group" aria-label="%s" font-family="system-ui, sans-serif" font-size="12">`,
		num(w), num(h), esc("Node timeline, "+formatMicros(spanUs)+" in all"))

	// Axis: ticks at round durations, with grid lines down through the rows.
	sb.WriteString(`<g class="wf-axis">`)
	step := tickStep(spanUs)
	for t := int64(0); t <= spanUs; t += step {
		x := wfLabelW + float64(t)*scale
		anchor := "middle"
		switch {
		case t == 0:
			anchor = "start"
		case x > wfLabelW+wfPlotW-24:
			anchor = "end"
		}
		fmt.Fprintf(&sb, `<line class="wf-grid" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#d0d7de"/><text class="wf-tick" x="%s" y="16" text-anchor="%s">%s</text>`,
			num(x), num(wfAxisH-6), num(x), num(h-4), num(x), anchor, formatMicros(t))
		if step == 0 {
			break
		}
	}
	sb.WriteString("</g>")

	for i := range r.Nodes {
		nr := &r.Nodes[i]
		y := wfAxisH + float64(i)*wfRowH
		off := offsetUs(nr)
		durUs := max(nr.DurationMicros, 0)
		dur := formatMicros(durUs)
		if nr.Status == engine.StatusRunning {
			durUs = max(spanUs-off, durUs)
			dur = "running…"
		}
		x := wfLabelW + float64(off)*scale
		bw := max(float64(durUs)*scale, wfMinBarW)
		x = min(x, wfLabelW+wfPlotW-wfMinBarW)

		classes := "wf-row " + statusClass(nr.Status)
		if i%2 == 1 {
			classes += " wf-odd"
		}
		name := nr.Node
		if nr.Recheck {
			classes += " recheck"
		}
		title := fmt.Sprintf("#%d %s (%s): %s\nstarted +%s, took %s", nr.Seq, nr.Node, nr.Type, nr.Status, formatMicros(off), dur)
		if nr.Tries > 1 {
			title += fmt.Sprintf(" in %d tries", nr.Tries)
		}
		if nr.Recheck {
			title += "\nrecheck under a lock"
		}
		if nr.Error != "" {
			title += "\n" + truncateText(nr.Error, 300)
		}
		href := ""
		if rowHref != nil {
			href = safeHref(rowHref(nr.Seq))
		}
		aria := fmt.Sprintf("#%d %s: %s, %s", nr.Seq, nr.Node, nr.Status, dur)
		groupAttrs, closeLink := openLink(&sb, href, aria)
		fmt.Fprintf(&sb, `<g class="%s" data-seq="%d" data-node="%s"%s><title>%s</title>`,
			classes, nr.Seq, esc(nr.Node), groupAttrs, esc(title))
		fmt.Fprintf(&sb, `<rect class="wf-band" x="0" y="%s" width="%s" height="%s" fill="none"/>`, num(y), num(w), num(wfRowH))
		label := truncateText(name, 26)
		if nr.Recheck {
			label += " ↻"
		}
		fmt.Fprintf(&sb, `<text class="wf-label" x="8" y="%s"><tspan class="wf-seq">%d</tspan> %s</text>`,
			num(y+wfRowH/2+4), nr.Seq, esc(label))
		fmt.Fprintf(&sb, `<rect class="wf-bar" x="%s" y="%s" width="%s" height="%s" rx="2" fill="#8a94a6"/>`,
			num(x), num(y+(wfRowH-wfBarH)/2), num(bw), num(wfBarH))
		// The duration goes right of the bar, or left of it when the bar reaches the edge.
		tx, anchor := x+bw+6, "start"
		if tx+float64(utf8.RuneCountInString(dur))*6.5 > w {
			tx, anchor = x-6, "end"
		}
		fmt.Fprintf(&sb, `<text class="wf-dur" x="%s" y="%s" text-anchor="%s">%s</text>`,
			num(tx), num(y+wfRowH/2+4), anchor, esc(dur))
		sb.WriteString("</g>")
		sb.WriteString(closeLink)
	}
	sb.WriteString("</svg>")
	return template.HTML(sb.String())
}

// tickStep returns a round step (1, 2 or 5 times a power of ten microseconds, or whole
// seconds, minutes, hours) that cuts span into at most five parts; 0 for an empty span.
func tickStep(spanUs int64) int64 {
	if spanUs <= 0 {
		return 0
	}
	steps := []int64{}
	for p := int64(1); p <= int64(time.Second/time.Microsecond); p *= 10 {
		steps = append(steps, p, 2*p, 5*p)
	}
	const s, m = int64(time.Second / time.Microsecond), int64(time.Minute / time.Microsecond)
	steps = append(steps, 2*s, 5*s, 10*s, 15*s, 30*s, m, 2*m, 5*m, 10*m, 15*m, 30*m, 60*m, 120*m, 240*m, 480*m, 1440*m)
	for _, st := range steps {
		if spanUs/st <= 5 {
			return st
		}
	}
	return spanUs / 5
}

// num formats a coordinate with at most one decimal.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// esc escapes user text for SVG text and attributes (HTML and XML alike): markup characters,
// and characters XML 1.0 does not allow at all (most control characters) become U+FFFD.
func esc(s string) string {
	return html.EscapeString(strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF:
			return utf8.RuneError
		}
		return r
	}, s))
}

// safeHref returns u when it is a relative URL or an http(s) one, else "" (no link): the
// caller builds these, but a javascript: link must never get through.
func safeHref(u string) string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	switch strings.ToLower(p.Scheme) {
	case "", "http", "https":
		return u
	}
	return ""
}

// slug turns a name into an id fragment: lowercase ASCII letters and digits, other runs as
// "-", at most 48 bytes; "n" when nothing is left.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= 48 {
				break
			}
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "n"
	}
	return b.String()
}

// uniqueID returns id, or id-2, id-3… when taken; it marks the result taken.
func uniqueID(taken map[string]bool, id string) string {
	out := id
	for i := 2; taken[out]; i++ {
		out = id + "-" + strconv.Itoa(i)
	}
	taken[out] = true
	return out
}

// truncateText cuts s to about room narrow characters (wide CJK and emoji count two), ending
// in "…" when it cut.
func truncateText(s string, room float64) string {
	width := func(r rune) float64 {
		if r >= 0x2E80 {
			return 2
		}
		return 1
	}
	total := 0.0
	for _, r := range s {
		total += width(r)
	}
	if total <= room {
		return s
	}
	used := 1.0 // the ellipsis
	for i, r := range s {
		if used+width(r) > room {
			return strings.TrimRight(s[:i], " ") + "…"
		}
		used += width(r)
	}
	return s
}
