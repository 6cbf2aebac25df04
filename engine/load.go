package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Loader turns flow files into Flows. serve, run and validate all load through it, so a flow
// that validates is a flow that loads.
type Loader struct {
	Registry *Registry
	// Secrets, when set, must hold every secret a flow names ($secrets.NAME): one it lacks is
	// a load error at the name's place in the file. When nil, secret names are checked only
	// for form, so that flowd validate works where no secrets are configured.
	Secrets Secrets
}

// LoadFile reads and loads one flow file.
func (l *Loader) LoadFile(path string) (*Flow, Problems) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Msg: fmt.Sprintf("read: %v", err)}}
	}
	return l.Load(path, src)
}

// LoadDir loads every *.json file in dir, sorted by name. Two files with one flow id are a
// problem. It returns the flows that loaded without errors and every problem (warnings too).
func (l *Loader) LoadDir(dir string) ([]*Flow, Problems) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, Problems{{File: dir, Msg: fmt.Sprintf("list flows: %v", err)}}
	}
	sort.Strings(paths)
	return l.LoadFiles(paths)
}

// LoadFiles loads the files in order, as LoadDir does.
func (l *Loader) LoadFiles(paths []string) ([]*Flow, Problems) {
	var flows []*Flow
	var all Problems
	byID := map[string]string{}
	for _, p := range paths {
		f, probs := l.LoadFile(p)
		all = append(all, probs...)
		if f == nil {
			continue
		}
		if other, ok := byID[f.ID]; ok {
			all = append(all, &Problem{File: p, Msg: fmt.Sprintf("flow id %q is also used by %s", f.ID, other)})
			continue
		}
		byID[f.ID] = p
		flows = append(flows, f)
	}
	return flows, all
}

// Load builds a flow from a file's bytes. It returns nil and the problems when the flow has
// any error; warnings come back with a flow.
func (l *Loader) Load(file string, src []byte) (*Flow, Problems) {
	ld := &loading{file: file, src: src, reg: l.Registry, secrets: l.Secrets, broken: map[string]bool{}, locks: map[*FlowNode]*jvalue{}}
	f := ld.load()
	// Report like a compiler: in file order.
	sort.SliceStable(ld.probs, func(i, j int) bool {
		a, b := ld.probs[i].Pos, ld.probs[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	if len(ld.probs.Errors()) > 0 {
		return nil, ld.probs
	}
	return f, ld.probs
}

type loading struct {
	file    string
	src     []byte
	reg     *Registry
	secrets Secrets
	probs   Problems
	// broken holds the names of nodes that failed to build, so connections naming them do
	// not add a second, misleading problem.
	broken map[string]bool
	// locks holds each node's "lock" object, resolved once connections are known.
	locks map[*FlowNode]*jvalue
}

func (ld *loading) errAt(off int, format string, args ...any) {
	ld.probs = append(ld.probs, &Problem{File: ld.file, Pos: positionOf(ld.src, off), Msg: fmt.Sprintf(format, args...)})
}

func (ld *loading) warnAt(off int, format string, args ...any) {
	ld.probs = append(ld.probs, &Problem{File: ld.file, Pos: positionOf(ld.src, off), Warning: true, Msg: fmt.Sprintf(format, args...)})
}

// checkKeys reports keys of obj not in known, with a did-you-mean.
func (ld *loading) checkKeys(obj *jvalue, where string, known ...string) {
	for _, m := range obj.obj {
		if !contains(known, m.key) {
			ld.errAt(m.keyOff, "%sunknown key %q%s", where, m.key, DidYouMean(m.key, known))
		}
	}
}

func (ld *loading) want(v *jvalue, kind jkind, what string) bool {
	if v.kind != kind {
		ld.errAt(v.off, "%s: want %s, got %s", what, kind, v.kind)
		return false
	}
	return true
}

func (ld *loading) load() *Flow {
	root, err := parseJSON(ld.src)
	if err != nil {
		se := err.(*SyntaxError)
		ld.errAt(se.Offset, "invalid JSON: %s", se.Msg)
		return nil
	}
	if !ld.want(root, jobject, "flow") {
		return nil
	}
	ld.checkKeys(root, "", "id", "name", "description", "settings", "nodes", "connections")

	sum := sha256.Sum256(ld.src)
	f := &Flow{
		File:    ld.file,
		Source:  ld.src,
		Version: hex.EncodeToString(sum[:6]),
		byName:  map[string]*FlowNode{},
	}
	f.ID = strings.TrimSuffix(filepath.Base(ld.file), filepath.Ext(ld.file))
	if v := root.get("id"); v != nil && ld.want(v, jstring, "id") {
		if v.str == "" || strings.ContainsAny(v.str, "/ \t\n") {
			ld.errAt(v.off, "id: must be non-empty with no slashes or spaces")
		}
		f.ID = v.str
	}
	f.Name = f.ID
	if v := root.get("name"); v != nil && ld.want(v, jstring, "name") {
		f.Name = v.str
	}
	if v := root.get("description"); v != nil {
		ld.want(v, jstring, "description")
	}
	ld.settings(root.get("settings"), &f.Settings)

	nodes := root.get("nodes")
	if nodes == nil {
		ld.errAt(root.off, "nodes: required")
		return f
	}
	if !ld.want(nodes, jarray, "nodes") {
		return f
	}
	srcs := map[*FlowNode]*jvalue{}
	for i, nv := range nodes.arr {
		n := ld.node(f, i, nv)
		if n == nil {
			continue
		}
		if _, dup := f.byName[n.Name]; dup {
			ld.errAt(nv.get("name").off, "nodes[%d]: duplicate node name %q", i, n.Name)
			continue
		}
		f.byName[n.Name] = n
		f.Nodes = append(f.Nodes, n)
		srcs[n] = nv
		if n.Type.Trigger {
			f.Triggers = append(f.Triggers, n)
		}
	}
	sort.Strings(f.secretNames)
	ld.connections(f, root.get("connections"))
	if ld.graph(f, srcs, root) {
		for _, n := range f.Nodes {
			if v := ld.locks[n]; v != nil {
				ld.lock(f, n, v)
			}
		}
	}
	return f
}

// lock resolves a node's "lock" setting: {"name", "output", "recheckFrom", "until"}.
func (ld *loading) lock(f *Flow, n *FlowNode, v *jvalue) {
	where := fmt.Sprintf("node %q: lock", n.Name)
	ld.checkKeys(v, where+": ", "name", "output", "recheckFrom", "until")
	spec := &LockSpec{RecheckFrom: n}
	ok := true
	str := func(key string) (string, *jvalue) {
		kv := v.get(key)
		if kv == nil {
			return "", nil
		}
		if kv.kind != jstring || kv.str == "" {
			ld.errAt(kv.off, "%s.%s: want a non-empty string", where, key)
			ok = false
			return "", nil
		}
		return kv.str, kv
	}
	name, nameV := str("name")
	if nameV == nil && ok {
		ld.errAt(v.off, "%s.name: required", where)
		ok = false
	}
	spec.Name = name
	switch out, outV := str("output"); {
	case outV != nil:
		if spec.Port = portIndex(n.Ports, out); spec.Port < 0 {
			ld.errAt(outV.off, "%s.output: node %q has no output %q; its outputs are %s", where, n.Name, out, strings.Join(n.Ports, ", "))
			ok = false
		}
	case len(n.Ports) > 1:
		ld.errAt(v.off, "%s.output: required: name the output whose items need the lock (%s)", where, strings.Join(n.Ports, ", "))
		ok = false
	}
	if from, fromV := str("recheckFrom"); fromV != nil {
		spec.RecheckFrom = f.byName[from]
		if spec.RecheckFrom == nil {
			ld.errAt(fromV.off, "%s.recheckFrom: no node named %q%s", where, from, DidYouMean(from, nodeNames(f)))
			ok = false
		} else if spec.Path = pathBetween(spec.RecheckFrom, n); spec.Path == nil {
			ld.errAt(fromV.off, "%s.recheckFrom: %q does not lead to %q", where, from, n.Name)
			ok = false
		} else if spec.RecheckFrom.Type.Trigger {
			ld.errAt(fromV.off, "%s.recheckFrom: %q is a trigger; recheck from the node after it", where, from)
			ok = false
		}
	} else {
		spec.Path = []LockStep{{Node: n}}
	}
	if until, untilV := str("until"); untilV != nil {
		spec.Until = f.byName[until]
		if spec.Until == nil {
			ld.errAt(untilV.off, "%s.until: no node named %q%s", where, until, DidYouMean(until, nodeNames(f)))
			ok = false
		} else if spec.Port >= 0 && !leadsTo(n.Next[spec.Port], spec.Until) {
			ld.errAt(untilV.off, "%s.until: %q is not reached from output %q, so the lock would be held to the end of the run", where, until, n.Ports[spec.Port])
			ok = false
		}
	}
	if ok {
		n.Settings.Lock = spec
		f.hasLocks = true
	}
}

// pathBetween returns the first path, depth first in connection order, from one node to
// another, each step with the port it delivers on; nil when there is none.
func pathBetween(from, to *FlowNode) []LockStep {
	return pathFrom(from, to, map[*FlowNode]bool{})
}

// pathFrom is pathBetween's search. dead holds the nodes already known not to lead to the
// target, so each node is searched once: a chain of diamonds has 2^n paths.
func pathFrom(from, to *FlowNode, dead map[*FlowNode]bool) []LockStep {
	if from == to {
		return []LockStep{{Node: to}}
	}
	if dead[from] {
		return nil
	}
	for port, targets := range from.Next {
		for _, t := range targets {
			if rest := pathFrom(t, to, dead); rest != nil {
				return append([]LockStep{{Node: from, Port: port}}, rest...)
			}
		}
	}
	dead[from] = true
	return nil
}

// leadsTo reports whether target is among nodes or downstream of them.
func leadsTo(nodes []*FlowNode, target *FlowNode) bool {
	seen := map[*FlowNode]bool{}
	stack := append([]*FlowNode(nil), nodes...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == target {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		for _, next := range n.Next {
			stack = append(stack, next...)
		}
	}
	return false
}

func (ld *loading) settings(v *jvalue, s *FlowSettings) {
	s.Timeout = DefaultRunTimeout
	s.Location = time.Local
	if v == nil || !ld.want(v, jobject, "settings") {
		return
	}
	ld.checkKeys(v, "settings: ", "timeout", "timezone")
	if t := v.get("timeout"); t != nil {
		d, err := parseDurationValue(t.plain())
		switch {
		case err != nil:
			ld.errAt(t.off, "settings.timeout: %v", err)
		case d == 0:
			ld.errAt(t.off, "settings.timeout: must be more than zero")
		default:
			s.Timeout = d
		}
	}
	if tz := v.get("timezone"); tz != nil && ld.want(tz, jstring, "settings.timezone") {
		loc, err := time.LoadLocation(tz.str)
		if err != nil {
			ld.errAt(tz.off, "settings.timezone: unknown time zone %q", tz.str)
		} else {
			s.Location, s.TimezoneName = loc, tz.str
		}
	}
}

var nodeKeys = []string{
	"name", "type", "parameters", "position", "disabled", "notes",
	"retryOnFail", "maxTries", "waitBetweenTries", "onError", "timeout", "lock",
	"id", "typeVersion", // n8n's, accepted and ignored so exports need less editing
}

func (ld *loading) node(f *Flow, i int, nv *jvalue) *FlowNode {
	where := fmt.Sprintf("nodes[%d]", i)
	if !ld.want(nv, jobject, where) {
		return nil
	}
	nameV := nv.get("name")
	if nameV == nil || nameV.kind != jstring || strings.TrimSpace(nameV.str) == "" {
		off := nv.off
		if nameV != nil {
			off = nameV.off
		}
		ld.errAt(off, "%s: name: required (a non-empty string)", where)
		return nil
	}
	n := &FlowNode{Name: nameV.str}
	where = fmt.Sprintf("node %q", n.Name)
	ld.checkKeys(nv, where+": ", nodeKeys...)

	typeV := nv.get("type")
	if typeV == nil || typeV.kind != jstring {
		ld.errAt(nv.off, "%s: type: required", where)
		return nil
	}
	n.TypeName = typeV.str
	n.Type = ld.reg.Lookup(typeV.str)
	if n.Type == nil {
		ld.errAt(typeV.off, "%s: %v %q%s", where, ErrUnknownNodeType, typeV.str, ld.reg.suggest(typeV.str))
		ld.broken[n.Name] = true
		return nil
	}
	if v := nv.get("disabled"); v != nil && ld.want(v, jbool, where+": disabled") {
		n.Disabled = v.b
	}
	if v := nv.get("notes"); v != nil && ld.want(v, jstring, where+": notes") {
		n.Notes = v.str
	}
	if v := nv.get("position"); v != nil {
		if v.kind != jarray || len(v.arr) != 2 || v.arr[0].kind != jnumber || v.arr[1].kind != jnumber {
			ld.errAt(v.off, "%s: position: want [x, y]", where)
		} else {
			x, _ := v.arr[0].num.Float64()
			y, _ := v.arr[1].num.Float64()
			n.Position = &[2]float64{x, y}
		}
	}
	ld.nodeSettings(nv, where, &n.Settings)

	n.Ports = append([]string(nil), n.Type.Ports()...)
	if n.Settings.OnError == OnErrorErrorOutput {
		n.Ports = append(n.Ports, "error")
	}
	n.Next = make([][]*FlowNode, len(n.Ports))
	if v := nv.get("lock"); v != nil && ld.want(v, jobject, where+": lock") {
		ld.locks[n] = v
	}

	pv := nv.get("parameters")
	if pv == nil {
		pv = &jvalue{off: nv.off, kind: jobject}
	}
	if !ld.want(pv, jobject, where+": parameters") {
		ld.broken[n.Name] = true
		return nil
	}
	params := newParams(pv, "parameters", n.Type.Params)
	params.parent.secrets = ld.secrets
	params.checkSpec(n.Type.Params)
	impl, err := n.Type.New(&NodeConfig{Flow: f.ID, Name: n.Name, Type: n.Type, Params: params, Settings: &f.Settings})
	if err != nil {
		ld.errAt(pv.off, "%s: %v", where, err)
	}
	params.checkUnused()
	for _, pe := range params.parent.errs {
		off := pe.off
		if off < 0 {
			lit, idx := decodeStringOff(off)
			off = stringContentOffset(ld.src, lit, idx)
		}
		ld.errAt(off, "%s: %s", where, pe.msg)
	}
	n.Impl = impl
	keys := map[string]bool{}
	for _, e := range params.Exprs() {
		f.usesNode = f.usesNode || e.node
		f.usesFlow = f.usesFlow || e.flow
		f.usesRun = f.usesRun || e.run
		if e.staticAll {
			n.staticAll = true
		}
		if e.staticAll || len(e.staticKeys) > 0 {
			n.readsStatic = true
		}
		for _, k := range e.staticKeys {
			keys[k] = true
		}
		n.readsSecrets = n.readsSecrets || len(e.secrets) > 0
		for _, ref := range e.secrets {
			if !contains(f.secretNames, ref.name) {
				f.secretNames = append(f.secretNames, ref.name)
			}
		}
	}
	for k := range keys {
		n.staticKeys = append(n.staticKeys, k)
	}
	sort.Strings(n.staticKeys)
	return n
}

func (ld *loading) nodeSettings(nv *jvalue, where string, s *NodeSettings) {
	s.OnError = OnErrorStop
	s.WaitBetweenTries = time.Second
	if v := nv.get("retryOnFail"); v != nil && ld.want(v, jbool, where+": retryOnFail") {
		s.RetryOnFail = v.b
	}
	s.MaxTries = 1
	if s.RetryOnFail {
		s.MaxTries = 3
	}
	if v := nv.get("maxTries"); v != nil && ld.want(v, jnumber, where+": maxTries") {
		n, err := v.num.Int64()
		if err != nil || n < 1 || n > 100 {
			ld.errAt(v.off, "%s: maxTries: want a whole number from 1 to 100", where)
		} else if s.RetryOnFail {
			s.MaxTries = int(n)
		} else {
			ld.warnAt(v.off, "%s: maxTries has no effect without retryOnFail: true", where)
		}
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"waitBetweenTries", &s.WaitBetweenTries}, {"timeout", &s.Timeout}} {
		if v := nv.get(d.key); v != nil {
			dur, err := parseDurationValue(v.plain())
			if err != nil {
				ld.errAt(v.off, "%s: %s: %v", where, d.key, err)
				continue
			}
			*d.dst = dur
		}
	}
	if v := nv.get("onError"); v != nil && ld.want(v, jstring, where+": onError") {
		switch v.str {
		case "stop", "stopWorkflow":
			s.OnError = OnErrorStop
		case "continue", "continueRegularOutput":
			s.OnError = OnErrorContinue
		case "errorOutput", "continueErrorOutput":
			s.OnError = OnErrorErrorOutput
		default:
			ld.errAt(v.off, "%s: onError: %q is not one of stop, continue, errorOutput%s", where, v.str, DidYouMean(v.str, []string{"stop", "continue", "errorOutput"}))
		}
	}
}

// connections reads the "connections" object. Per source node it takes either a list of
// target names (the first output), or an object keyed by output name ("main", "true",
// "false", "error", or a port number) whose values list target names. n8n's export form,
// {"main": [[{"node": "B", ...}], [...]]} with one inner list per output, is accepted too.
func (ld *loading) connections(f *Flow, v *jvalue) {
	if v == nil || !ld.want(v, jobject, "connections") {
		return
	}
	for _, m := range v.obj {
		src := f.byName[m.key]
		if src == nil && ld.broken[m.key] {
			continue
		}
		if src == nil {
			ld.errAt(m.keyOff, "connections: no node named %q%s", m.key, DidYouMean(m.key, nodeNames(f)))
			continue
		}
		where := fmt.Sprintf("connections[%q]", m.key)
		switch m.val.kind {
		case jarray:
			ld.targets(f, src, 0, m.val, where)
		case jobject:
			for _, pm := range m.val.obj {
				if pm.key == "main" && pm.val.kind == jarray && len(pm.val.arr) > 0 && pm.val.arr[0].kind == jarray {
					for port, list := range pm.val.arr {
						if port >= len(src.Ports) {
							ld.errAt(list.off, "%s.main[%d]: node %q has only %d output(s) (%s)", where, port, src.Name, len(src.Ports), strings.Join(src.Ports, ", "))
							continue
						}
						ld.targets(f, src, port, list, fmt.Sprintf("%s.main[%d]", where, port))
					}
					continue
				}
				port := portIndex(src.Ports, pm.key)
				if port < 0 {
					hint := ""
					if pm.key == "error" {
						hint = ` (set "onError": "errorOutput" on the node to get an error output)`
					}
					ld.errAt(pm.keyOff, "%s: node %q has no output %q; its outputs are %s%s", where, src.Name, pm.key, strings.Join(src.Ports, ", "), hint)
					continue
				}
				ld.targets(f, src, port, pm.val, where+"."+pm.key)
			}
		default:
			ld.errAt(m.val.off, "%s: want a list of node names or an object of output: [node names], got %s", where, m.val.kind)
		}
	}
}

func portIndex(ports []string, key string) int {
	for i, p := range ports {
		if p == key {
			return i
		}
	}
	if len(key) == 1 && key[0] >= '0' && key[0] <= '9' && int(key[0]-'0') < len(ports) {
		return int(key[0] - '0')
	}
	if key == "main" && len(ports) > 0 {
		return 0
	}
	return -1
}

func (ld *loading) targets(f *Flow, src *FlowNode, port int, list *jvalue, where string) {
	if list.kind == jstring { // a single name
		list = &jvalue{off: list.off, kind: jarray, arr: []*jvalue{list}}
	}
	if !ld.want(list, jarray, where) {
		return
	}
	for _, t := range list.arr {
		name := ""
		switch t.kind {
		case jstring:
			name = t.str
		case jobject:
			if nv := t.get("node"); nv != nil && nv.kind == jstring {
				name = nv.str
			}
			ld.checkKeys(t, where+": ", "node", "type", "index")
		}
		if name == "" {
			ld.errAt(t.off, "%s: want a node name", where)
			continue
		}
		dst := f.byName[name]
		if dst == nil && ld.broken[name] {
			continue
		}
		if dst == nil {
			ld.errAt(t.off, "%s: no node named %q%s", where, name, DidYouMean(name, nodeNames(f)))
			continue
		}
		if dst.Type.Trigger {
			ld.errAt(t.off, "%s: %q is a trigger and cannot have inputs", where, name)
			continue
		}
		for _, existing := range src.Next[port] {
			if existing == dst {
				ld.errAt(t.off, "%s: %q is listed twice", where, name)
			}
		}
		src.Next[port] = append(src.Next[port], dst)
		dst.Inputs++
	}
}

func nodeNames(f *Flow) []string {
	out := make([]string, len(f.Nodes))
	for i, n := range f.Nodes {
		out[i] = n.Name
	}
	return out
}

// graph checks for cycles and for nodes no trigger reaches. It reports whether the graph is
// acyclic, so that walks over it terminate.
func (ld *loading) graph(f *Flow, srcs map[*FlowNode]*jvalue, root *jvalue) bool {
	index := map[*FlowNode]int{}
	for i, n := range f.Nodes {
		index[n] = i
	}
	next := func(i int) []int {
		var out []int
		for _, port := range f.Nodes[i].Next {
			for _, d := range port {
				out = append(out, index[d])
			}
		}
		return out
	}
	if cyc := findCycle(len(f.Nodes), next); cyc != nil {
		names := make([]string, len(cyc))
		for i, c := range cyc {
			names[i] = fmt.Sprintf("%q", f.Nodes[c].Name)
		}
		ld.errAt(srcs[f.Nodes[cyc[0]]].off, "connections form a cycle: %s (flows must be acyclic)", strings.Join(names, " → "))
		return false
	}
	if len(f.Triggers) == 0 {
		if len(f.Nodes) > 0 {
			ld.warnAt(root.off, "flow has no trigger node (webhook or scheduleTrigger), so nothing can start it")
		}
		return true
	}
	var roots []int
	for _, t := range f.Triggers {
		roots = append(roots, index[t])
	}
	seen := reachable(len(f.Nodes), roots, next)
	for i, ok := range seen {
		if !ok {
			n := f.Nodes[i]
			ld.warnAt(srcs[n].off, "node %q: no trigger reaches it, so it never runs", n.Name)
		}
	}
	return true
}
