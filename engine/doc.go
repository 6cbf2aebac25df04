// Package engine loads flows and runs them. It does no I/O of its own: storage, HTTP and
// schedules live in other packages, which the engine reaches only through the small interfaces
// in store.go and the node types registered with it.
//
// # Model
//
// A flow file (see docs/flow-format.md) is loaded once by a Loader into a Flow: nodes built by
// their NodeType's constructor from parameters, expressions compiled, connections checked
// (names, outputs, cycles, reachability). Every problem is reported as file:line:col, and
// validation and loading are the same code, so a flow that validates is a flow that loads. A
// Flow is immutable and shared by all its runs.
//
// Items are JSON objects (Item). A node receives the items of one delivery and emits items on
// its output ports through Output; it may fail single items, and the node's onError setting
// decides where they go. Triggers (webhook, schedule) are nodes with no inputs that emit the
// items a run is started with.
//
// # Runs
//
// Executor.Run runs one flow from one trigger in a single goroutine, one node at a time, depth
// first: a node's outputs deliver, in order, to their targets, in order, and each delivery runs
// to the end of its branch before the next. An output with no items delivers nothing; a node
// with several inputs runs once per delivery. The run's context carries the flow timeout and
// each try of a node may add its own; cancellation stops the run between nodes and reaches
// the node in flight through its ctx. Retries, onError and panics are handled per node. The
// run record (Run, NodeRun) is stored when the run starts and when it ends, cancelled or not.
//
// # Static data
//
// Each flow has static data: a JSON object kept key by key by a StaticStore. A node reads it
// fresh on first use ($static, Input.Static) and stages writes on a StaticView; the executor
// commits them atomically and durably when the node succeeds, before the run continues. The
// commit names the versions of the keys the node read (worked out from its expressions at
// load), and fails with ErrStaticConflict if any changed meanwhile; the node then runs again
// on fresh data. So concurrent runs never lose each other's updates, and a node that only
// writes never waits.
//
// # Locks
//
// Work that must happen once however many runs want it (a token refresh) uses a node's lock
// setting (LockSpec): items sent on one output run under a named Locker lock, after the path
// that decided to send them there has run again on fresh data — double-checked locking.
//
// # Expressions
//
// String parameters may hold {{ … }} expressions in expr's language, compiled once at load
// (Template, Expr) and evaluated against an Env ($json, $input, $node, $static, $now, $env,
// $flow, $run, $vars, $secrets) under a memory budget. Field access is null-safe, and date
// helpers (plus, minus, toISO, …) may be called method-style.
//
// # Secrets
//
// Flows name credentials ($secrets.NAME, always with a constant name), never hold them. The
// values come from a Secrets (SecretStore: the environment and a secrets file), which the
// Loader checks every name against at load. Run records are redacted before they are stored
// (package engine/redact): secret values, values under sensitive keys and credentials in
// text are masked; the live data passed between nodes and static data keep real values.
// $env hides the variables that configure flowd's own secrets.
package engine
