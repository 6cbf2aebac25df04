package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/engine/redact"
)

// Executor runs flows and records each run. It is safe for concurrent use; each run is a
// single goroutine that executes one node at a time.
//
// Run records are redacted (see Redactor) before they reach Store: node inputs, outputs,
// errors and static-data changes hold no secret value and nothing under a sensitive key.
// The live data a run passes between nodes, and static data itself, keep their real values.
type Executor struct {
	Store  Store
	Logger *slog.Logger
	// Env is what expressions see as $env; nil means the process environment, read once.
	// Either way the variables that configure flowd's own secrets (FLOWD_SECRET_*,
	// FLOWD_SECRETS_FILE, FLOWD_AUTH_*, FLOWD_ENCRYPTION_KEY*) are left out.
	Env map[string]string
	// Secrets gives $secrets.NAME; nil means none, and every $secrets.NAME reads null.
	Secrets Secrets
	// Redactor redacts run records before they are stored, and errors before they are
	// logged; flowd always sets one. When it is nil and Secrets is set, one is built from the
	// process's key rules (redact.CurrentKeys) and the values of Secrets when it can list
	// them (a *SecretStore can), since the executor itself puts those values into runs. When
	// both are nil, records are stored as they are (tests of what shows stored records).
	Redactor *redact.Redactor
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Locker serves node locks (LockSpec); nil means one LocalLocker for this Executor.
	Locker Locker

	lockerOnce  sync.Once
	localLocker *LocalLocker

	envOnce sync.Once
	envAny  map[string]any

	redactOnce sync.Once
	redactor   *redact.Redactor
}

// RunRequest says how to start a run.
type RunRequest struct {
	// ID is the run's id; "" means a new one (NewRunID). A caller that must answer with the id
	// before the run ends (a webhook responding at once) makes it first.
	ID string
	// Trigger names the trigger node that starts the run; "" means the flow's first trigger.
	Trigger string
	// Mode records what started the run: "manual", "webhook" or "schedule".
	Mode string
	// Items are the trigger's items; nil means one empty item.
	Items []Item
	// Started, when set, is called once the run's start is durably recorded and before its
	// first node runs, so a caller can answer "started" knowing the run is in the store.
	Started func(*Run)
}

// MaxNodeExecutions bounds the node executions of one run, so that a flow whose branches
// multiply cannot run away.
const MaxNodeExecutions = 10_000

// maxStaticConflicts bounds how often one node execution is repeated because static data
// changed under it before its commit.
const maxStaticConflicts = 100

var (
	processEnvOnce sync.Once
	processEnv     map[string]any
)

func osEnvironment() map[string]any {
	processEnvOnce.Do(func() { processEnv = environMap(os.Environ()) })
	return processEnv
}

// environMap is $env for KEY=value entries, as os.Environ gives them.
func environMap(environ []string) map[string]any {
	out := map[string]any{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && v != "" && !hiddenEnv(k) {
			out[k] = v
		}
	}
	return out
}

func envMap(env map[string]string) map[string]any {
	if env == nil {
		return nil
	}
	out := make(map[string]any, len(env))
	for k, v := range env {
		if v != "" && !hiddenEnv(k) { // empty reads as unset, so $env.X ?? default works
			out[k] = v
		}
	}
	return out
}

// hiddenEnvPrefixes start the environment variables $env never shows: they configure
// flowd's own secrets (FLOWD_SECRET_NAME, FLOWD_SECRETS_FILE), authentication and
// encryption keys (the current one and any kept for rotation). Flows reach secrets through
// $secrets, which the loader checks and the run records redact.
var hiddenEnvPrefixes = []string{"FLOWD_SECRET", "FLOWD_AUTH_", "FLOWD_ENCRYPTION_KEY"}

func hiddenEnv(name string) bool {
	for _, p := range hiddenEnvPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (x *Executor) locker() Locker {
	if x.Locker != nil {
		return x.Locker
	}
	x.lockerOnce.Do(func() { x.localLocker = &LocalLocker{} })
	return x.localLocker
}

// exprEnv is $env: Env converted once, or the process environment.
func (x *Executor) exprEnv() map[string]any {
	x.envOnce.Do(func() {
		x.envAny = envMap(x.Env)
		if x.envAny == nil {
			x.envAny = osEnvironment()
		}
	})
	return x.envAny
}

// recordRedactor returns the Redactor, built once when none was given; nil when records are
// stored as they are.
func (x *Executor) recordRedactor() *redact.Redactor {
	x.redactOnce.Do(func() {
		x.redactor = x.Redactor
		if x.redactor == nil && x.Secrets != nil {
			var values map[string]string
			if l, ok := x.Secrets.(interface{ Values() map[string]string }); ok {
				values = l.Values()
			}
			x.redactor = redact.New(redact.CurrentKeys(), values)
		}
	})
	return x.redactor
}

// redactError is err's message, redacted when x redacts.
func (x *Executor) redactError(err error) string {
	if red := x.recordRedactor(); red != nil {
		return red.Message(err.Error())
	}
	return err.Error()
}

// secretsFor is $secrets for a run of f: the secrets f names that x.Secrets has.
// secretValues is $secrets for node n: the flow's secrets, looked up when a node that names
// one first runs. A node that names none gets nil, and most runs look up none.
func (e *execution) secretValues(n *FlowNode) map[string]any {
	if e.secrets == nil && n != nil && n.readsSecrets {
		e.secrets = e.x.secretsFor(e.flow)
	}
	return e.secrets
}

func (x *Executor) secretsFor(f *Flow) map[string]any {
	out := make(map[string]any, len(f.secretNames))
	if x.Secrets == nil {
		return out
	}
	for _, name := range f.secretNames {
		if v, ok := x.Secrets.Secret(name); ok {
			out[name] = v
		}
	}
	return out
}

func (x *Executor) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

func (x *Executor) logger() *slog.Logger {
	if x.Logger != nil {
		return x.Logger
	}
	return slog.Default()
}

// execution is the state of one run.
type execution struct {
	x        *Executor
	flow     *Flow
	run      *Run
	store    Store
	nodeOut  map[string]any
	osEnv    map[string]any
	secrets  map[string]any
	flowInfo map[string]any
	runInfo  map[string]any
	// lastInput is what each node received in its latest execution, for lock rechecks.
	lastInput map[*FlowNode][]Item
	// held maps the locks this run holds to their release; until maps a node to the locks to
	// release once it has run.
	held  map[string]func()
	until map[*FlowNode][]string
	// created waits for the run's start record (see Executor.Run).
	created func() error
}

// Run executes the flow from the requested trigger and returns the run record, which is
// stored as the run starts and again when it ends. A run that fails is not an error: its
// record says so. The error is for a run that could not be started or recorded. Cancelling
// ctx cancels the run; the record is still written.
//
// What is stored is the redacted record (Run.Redacted). The record returned holds the live
// node inputs and outputs, for in-process callers that pass on what the flow returned (a
// webhook answering with its last node's output); its errors are redacted, and encoding it
// as JSON gives the redacted record. Show it only that way.
func (x *Executor) Run(ctx context.Context, f *Flow, req RunRequest) (*Run, error) {
	trig, err := pickTrigger(f, req.Trigger)
	if err != nil {
		return nil, err
	}
	items := req.Items
	if items == nil {
		items = []Item{{}}
	}
	mode := req.Mode
	if mode == "" {
		mode = "manual"
	}
	start := x.now()
	id := req.ID
	if id == "" {
		id = NewRunID(start)
	}
	run := &Run{
		ID:          id,
		FlowID:      f.ID,
		FlowName:    f.Name,
		FlowVersion: f.Version,
		Trigger:     trig.Name,
		Mode:        mode,
		Status:      StatusRunning,
		StartedAt:   start,
		redactor:    x.recordRedactor(),
		// Most runs execute each node at most once: no regrowing while they record.
		Nodes: make([]NodeRun, 0, min(len(f.Nodes), 64)),
	}
	// created waits for the start record; a run's static-data commit and its end wait for it,
	// so nothing durable ever lacks its run. Nobody waiting to see the run recorded, the
	// record is queued and the run goes on. A RunQueuer's wait gives the same outcome each
	// call.
	created := func() error { return nil }
	if q, ok := x.Store.(RunQueuer); ok && req.Started == nil {
		wait, err := q.QueueCreateRun(ctx, run.Redacted())
		if err != nil {
			return nil, fmt.Errorf("record start of run of %s: %w", f.ID, err)
		}
		created = wait
	} else if x.Store != nil {
		if err := x.Store.CreateRun(ctx, run.Redacted()); err != nil {
			return nil, fmt.Errorf("record start of run of %s: %w", f.ID, err)
		}
	}
	if req.Started != nil {
		req.Started(run)
	}
	// What only some flows read is built only for them.
	e := &execution{
		x:       x,
		flow:    f,
		run:     run,
		store:   x.Store,
		osEnv:   x.exprEnv(),
		created: created,
	}
	if f.usesNode {
		e.nodeOut = map[string]any{}
	}
	if f.usesFlow {
		e.flowInfo = map[string]any{"id": f.ID, "name": f.Name, "version": f.Version}
	}
	if f.usesRun {
		e.runInfo = map[string]any{
			"id": run.ID, "mode": mode, "trigger": trig.Name, "startedAt": FormatTime(start.In(f.Settings.Location)),
		}
	}
	if f.hasLocks {
		e.lastInput = map[*FlowNode][]Item{}
		e.held = map[string]func(){}
		e.until = map[*FlowNode][]string{}
	}

	runCtx, cancel := context.WithTimeoutCause(ctx, f.Settings.Timeout, errRunTimeout)
	e.execute(runCtx, trig, items)
	e.releaseAll()
	cancel()

	run.FinishedAt = x.now()
	if run.redactor != nil {
		run.redactErrors()
	}
	if x.Store != nil {
		// The record must be written even when the run was cancelled.
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer wcancel()
		err := x.Store.FinishRun(wctx, run.Redacted())
		if cerr := created(); cerr != nil {
			return run, fmt.Errorf("record start of run %s of %s: %w", run.ID, f.ID, cerr)
		}
		if err != nil {
			return run, fmt.Errorf("record end of run %s of %s: %w", run.ID, f.ID, err)
		}
	}
	level := slog.LevelDebug
	if run.Status != StatusSuccess {
		level = slog.LevelWarn
	}
	if lg := x.logger(); lg.Enabled(ctx, level) { // its arguments cost allocations
		lg.Log(ctx, level, "run finished", "flow", f.ID, "run", run.ID, "status", run.Status,
			"duration", run.FinishedAt.Sub(run.StartedAt), "error", run.Error)
	}
	return run, nil
}

var errRunTimeout = errors.New("run timed out")

func pickTrigger(f *Flow, name string) (*FlowNode, error) {
	if name == "" {
		if len(f.Triggers) == 0 {
			return nil, fmt.Errorf("run %s: %w: the flow has no trigger node", f.ID, ErrNoTrigger)
		}
		return f.Triggers[0], nil
	}
	n := f.Node(name)
	if n == nil || !n.Type.Trigger {
		return nil, fmt.Errorf("run %s: %w: %q is not a trigger node of the flow", f.ID, ErrNoTrigger, name)
	}
	return n, nil
}

type delivery struct {
	node  *FlowNode
	items []Item
}

// execute runs deliveries depth first: when a node finishes, what it sent on its first output
// to its first target runs next, to completion, before its second target, and so on. An output
// with no items schedules nothing. A node with several incoming connections runs once per
// delivery; nothing is merged.
func (e *execution) execute(ctx context.Context, trig *FlowNode, items []Item) {
	run := e.run
	stack := []delivery{{node: trig, items: items}}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			e.stop(ctx, "")
			return
		}
		if len(run.Nodes) >= MaxNodeExecutions {
			run.Status = StatusError
			run.Error = fmt.Sprintf("run stopped after %d node executions", MaxNodeExecutions)
			return
		}
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]

		nr, ports, err := e.node(ctx, d.node, d.items)
		e.record(d.node, d.items, nr, ports)
		if err == nil && d.node.Settings.Lock != nil {
			ports, err = e.guard(ctx, d.node, ports)
		}
		e.releaseAfter(d.node)
		if err != nil {
			node := d.node.Name
			var ne *NodeError
			if errors.As(err, &ne) {
				node = ne.Node
			}
			if ctx.Err() != nil {
				e.stop(ctx, node)
				return
			}
			run.Status = StatusError
			run.Error = err.Error()
			run.ErrorNode = node
			return
		}
		var next []delivery
		for p, targets := range d.node.Next {
			if len(ports[p]) == 0 {
				continue
			}
			for _, t := range targets {
				next = append(next, delivery{node: t, items: ports[p]})
			}
		}
		for i := len(next) - 1; i >= 0; i-- {
			stack = append(stack, next[i])
		}
	}
	run.Status = StatusSuccess
}

// record appends a node execution to the run and remembers what the node received and sent.
func (e *execution) record(n *FlowNode, items []Item, nr NodeRun, ports [][]Item) {
	nr.Seq = len(e.run.Nodes)
	e.run.Nodes = append(e.run.Nodes, nr)
	if e.lastInput != nil {
		e.lastInput[n] = items
	}
	if e.nodeOut != nil {
		e.nodeOut[n.Name] = nodeView(ports)
	}
}

// guard applies n's lock after n sent ports: when items go to the locked output, it takes the
// lock, runs the recheck path again on fresh data and returns the fresh outputs. The lock is
// kept while items still go to the locked output, until the Until node has run.
func (e *execution) guard(ctx context.Context, n *FlowNode, ports [][]Item) ([][]Item, error) {
	spec := n.Settings.Lock
	if len(ports[spec.Port]) == 0 {
		return ports, nil
	}
	if _, held := e.held[spec.Name]; held {
		return ports, nil // this run already holds it, further up the branch
	}
	unlock, err := e.x.locker().Lock(ctx, e.flow.ID, spec.Name)
	if err != nil {
		return nil, &NodeError{Flow: e.flow.ID, Node: n.Name, Type: n.Type.Name, Err: fmt.Errorf("take lock %q: %w", spec.Name, err)}
	}
	e.held[spec.Name] = unlock

	path := spec.Path
	items, ok := e.lastInput[spec.RecheckFrom]
	if !ok { // this run reached n another way: check n alone again
		path, items = []LockStep{{Node: n}}, e.lastInput[n]
	}
	fresh := make([][]Item, len(n.Ports))
	for i, step := range path {
		nr, out, err := e.node(ctx, step.Node, items)
		nr.Recheck = true
		e.record(step.Node, items, nr, out)
		if err != nil {
			return nil, err
		}
		if i == len(path)-1 {
			fresh = out
			break
		}
		if items = out[step.Port]; len(items) == 0 {
			break // the path ends early: nothing reaches n
		}
	}
	switch {
	case len(fresh[spec.Port]) == 0:
		e.release(spec.Name) // someone else did the work meanwhile
	case spec.Until != nil:
		e.until[spec.Until] = append(e.until[spec.Until], spec.Name)
	}
	return fresh, nil
}

// releaseAfter releases the locks that wait for n to have run.
func (e *execution) releaseAfter(n *FlowNode) {
	for _, name := range e.until[n] {
		e.release(name)
	}
	delete(e.until, n)
}

func (e *execution) release(name string) {
	if unlock, ok := e.held[name]; ok {
		unlock()
		delete(e.held, name)
	}
}

func (e *execution) releaseAll() {
	for name := range e.held {
		e.release(name)
	}
}

// stop records why a run ended early: its timeout, or cancellation by the caller.
func (e *execution) stop(ctx context.Context, node string) {
	e.run.ErrorNode = node
	if errors.Is(context.Cause(ctx), errRunTimeout) {
		e.run.Status = StatusError
		e.run.Error = fmt.Sprintf("run timed out after %s", e.flow.Settings.Timeout)
		return
	}
	e.run.Status = StatusCanceled
	e.run.Error = "run canceled"
}

func nodeView(ports [][]Item) map[string]any {
	var all []Item
	outputs := make([]any, len(ports))
	for i, p := range ports {
		all = append(all, p...)
		outputs[i] = p
	}
	var first Item
	if len(all) > 0 {
		first = all[0]
	}
	return map[string]any{"json": first, "items": all, "outputs": outputs}
}

// node executes one delivery to n, with retries, static-data commit and the onError policy.
// It returns the record, the items per port, and an error when the run must stop.
func (e *execution) node(ctx context.Context, n *FlowNode, items []Item) (NodeRun, [][]Item, error) {
	start := e.x.now()
	nr := NodeRun{
		Node:       n.Name,
		Type:       n.Type.Name,
		StartedAt:  start,
		Input:      items,
		InputCount: len(items),
		Ports:      n.Ports,
	}
	finish := func(ports [][]Item, status RunStatus, err error) (NodeRun, [][]Item, error) {
		nr.DurationMicros = e.x.now().Sub(start).Microseconds()
		nr.Status = status
		nr.Output = ports
		nr.OutputCounts = make([]int, len(ports))
		for i, p := range ports {
			nr.OutputCounts[i] = len(p)
		}
		return nr, ports, err
	}

	if n.Disabled {
		ports := make([][]Item, len(n.Ports))
		ports[0] = items
		return finish(ports, StatusDisabled, nil)
	}
	if n.Type.SideEffects && e.store != nil {
		// What the node does outside cannot be undone: its run must be on record first.
		if err := e.recorded(); err != nil {
			nr.Error = err.Error()
			return finish(make([][]Item, len(n.Ports)), StatusError, &NodeError{Flow: e.flow.ID, Node: n.Name, Type: n.Type.Name, Err: err})
		}
	}

	var lastErr error
	conflicts := 0
	for nr.Tries < n.Settings.MaxTries {
		nr.Tries++
		out, err := e.try(ctx, n, items, &nr)
		if errors.Is(err, ErrStaticConflict) && conflicts < maxStaticConflicts {
			conflicts++
			nr.Tries--
			if !sleepCtx(ctx, time.Duration(rand.Int64N(int64(time.Millisecond)*int64(min(conflicts, 20))))) {
				lastErr = ctx.Err()
				break
			}
			continue
		}
		if err == nil {
			return finish(out.ports, StatusSuccess, nil)
		}
		lastErr = err
		if ctx.Err() != nil || nr.Tries >= n.Settings.MaxTries {
			break
		}
		e.x.logger().Info("node failed, trying again", "flow", e.flow.ID, "run", e.run.ID, "node", n.Name,
			"try", nr.Tries, "of", n.Settings.MaxTries, "error", e.x.redactError(err))
		if !sleepCtx(ctx, n.Settings.WaitBetweenTries) {
			break
		}
	}
	nr.Error = lastErr.Error()
	nodeErr := &NodeError{Flow: e.flow.ID, Node: n.Name, Type: n.Type.Name, Err: lastErr}
	if ctx.Err() != nil || n.Settings.OnError == OnErrorStop {
		return finish(make([][]Item, len(n.Ports)), StatusError, nodeErr)
	}
	// continue / errorOutput: every input item goes on with the error attached.
	ports := make([][]Item, len(n.Ports))
	port := n.Type.ContinueOutput
	if n.Settings.OnError == OnErrorErrorOutput {
		port = len(n.Ports) - 1
	}
	failed := items
	if len(failed) == 0 {
		failed = []Item{{}}
	}
	for _, it := range failed {
		ports[port] = append(ports[port], withError(it, lastErr))
	}
	return finish(ports, StatusError, nil)
}

// StatusDisabled marks the record of a disabled node, which passed its items through.
const StatusDisabled RunStatus = "disabled"

// try runs the node once and commits its static-data writes. Per-item failures are handled
// here by the onError policy; under "stop" the first one fails the try.
func (e *execution) try(ctx context.Context, n *FlowNode, items []Item, nr *NodeRun) (*Output, error) {
	tctx := ctx
	if n.Settings.Timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(ctx, n.Settings.Timeout, fmt.Errorf("node timed out after %s", n.Settings.Timeout))
		defer cancel()
	}
	io := &nodeIO{in: Input{
		Items: items,
		Node:  n.Name,
		Flow:  e.flow.ID,
		exec:  e,
		fnode: n,
		now:   e.x.now().In(e.flow.Settings.Location),
	}}
	in, out := &io.in, io.output(len(n.Ports))
	if err := safeRun(tctx, n.Impl, in, out, e.x.logger()); err != nil {
		if cause := context.Cause(tctx); cause != nil && ctx.Err() == nil {
			return nil, cause // the node's own timeout
		}
		return nil, err
	}
	if len(out.failed) > 0 {
		switch n.Settings.OnError {
		case OnErrorStop:
			f := out.failed[0]
			return nil, fmt.Errorf("item %d: %w", f.index, f.err)
		case OnErrorContinue:
			p := n.Type.ContinueOutput
			for _, f := range out.failed {
				out.ports[p] = append(out.ports[p], withError(f.item, f.err))
			}
		case OnErrorErrorOutput:
			last := len(out.ports) - 1
			for _, f := range out.failed {
				out.ports[last] = append(out.ports[last], withError(f.item, f.err))
			}
		}
	}
	if in.static != nil {
		if err := e.commitStatic(ctx, n, in.static, nr); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (e *execution) commitStatic(ctx context.Context, n *FlowNode, s *StaticView, nr *NodeRun) error {
	changes := s.pending()
	if len(changes) == 0 {
		return nil
	}
	c := &StaticCommit{FlowID: e.flow.ID, Reads: map[string]int64{}, ReadAll: n.staticAll, Changes: changes}
	if n.staticAll {
		for k, v := range s.loaded {
			c.Reads[k] = v.Version
		}
	} else {
		for _, k := range n.staticKeys {
			c.Reads[k] = s.loaded[k].Version
		}
	}
	if e.store == nil {
		return nil
	}
	// Static data is durable once committed; its run's record must be there first.
	if err := e.recorded(); err != nil {
		return err
	}
	if err := e.store.CommitStatic(ctx, c); err != nil {
		return err // the store says what it was committing
	}
	nr.Static = c.Changes
	return nil
}

// recorded waits for the run's start record, which must be in the store before anything of
// the run that outlives it: a static-data commit, an action outside flowd.
func (e *execution) recorded() error {
	if err := e.created(); err != nil {
		return fmt.Errorf("record start of run %s: %w", e.run.ID, err)
	}
	return nil
}

// safeRun calls the node, turning a panic into an error so one bad node cannot take the
// process down.
func safeRun(ctx context.Context, node Node, in *Input, out *Output, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("node panicked", "node", in.Node, "flow", in.Flow, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return node.Run(ctx, in, out)
}

// withError returns a copy of item with an "error" field holding err's message.
func withError(item Item, err error) Item {
	out := make(Item, len(item)+1)
	for k, v := range item {
		out[k] = v
	}
	out["error"] = err.Error()
	return out
}

// sleepCtx waits for d or until ctx is done; it reports whether the full wait happened.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
