package engine

import (
	"time"
)

// Flow is a loaded, validated flow: its nodes built and wired. It is immutable and shared by
// every run of this version of the flow.
type Flow struct {
	ID      string // from the file's "id", else its base name without .json
	Name    string
	File    string // path it was loaded from
	Version string // hash of the file's bytes
	// Source is the file's content, for the API.
	Source   []byte
	Settings FlowSettings
	Nodes    []*FlowNode // in file order
	// Triggers are the trigger nodes, in file order.
	Triggers []*FlowNode
	byName   map[string]*FlowNode
	// secretNames are the secrets the flow's expressions name, sorted.
	secretNames []string
	// usesNode, usesFlow and usesRun are set when an expression of the flow reads $node,
	// $flow or $run; runs of other flows do not build those values.
	usesNode, usesFlow, usesRun bool
	// hasLocks is set when a node of the flow has a lock: only then do runs keep what each
	// node received, for the lock's recheck.
	hasLocks bool
}

// Node returns the node with that name, or nil.
func (f *Flow) Node(name string) *FlowNode { return f.byName[name] }

// SecretNames returns the names of the secrets the flow's expressions use ($secrets.NAME),
// sorted.
func (f *Flow) SecretNames() []string { return append([]string(nil), f.secretNames...) }

// FlowSettings are a flow's "settings".
type FlowSettings struct {
	// Timeout bounds a whole run (default DefaultRunTimeout).
	Timeout time.Duration
	// Location is the time zone of $now and of schedules that name none (default: the
	// process's local zone); TimezoneName is how the file named it.
	Location     *time.Location
	TimezoneName string
}

// DefaultRunTimeout is the run timeout of a flow whose settings name none.
const DefaultRunTimeout = 5 * time.Minute

// FlowNode is one node of a loaded flow.
type FlowNode struct {
	Name     string
	Type     *NodeType
	TypeName string // as written in the file
	Impl     Node
	Disabled bool
	Notes    string
	// Position is where the node is drawn; nil when the file gives none.
	Position *[2]float64
	Settings NodeSettings
	// Ports are the output port names: the type's, plus "error" with onError=errorOutput.
	Ports []string
	// Next lists, per port, the nodes that port delivers to, in file order.
	Next [][]*FlowNode
	// Inputs counts the connections into this node.
	Inputs int

	readsStatic  bool
	readsSecrets bool // an expression names $secrets
	staticKeys   []string
	staticAll    bool
}

// OnError is what happens when a node fails.
type OnError string

const (
	OnErrorStop        OnError = "stop"        // the run fails (default)
	OnErrorContinue    OnError = "continue"    // failed items go on, with an "error" field
	OnErrorErrorOutput OnError = "errorOutput" // failed items go to the extra "error" port
)

// NodeSettings are the settings every node has.
type NodeSettings struct {
	RetryOnFail bool
	// MaxTries is how many times a failing node is tried in all (default 3 with RetryOnFail).
	MaxTries int
	// WaitBetweenTries is the pause between tries (default 1s).
	WaitBetweenTries time.Duration
	OnError          OnError
	// Timeout bounds one try of the node; 0 means only the run timeout applies.
	Timeout time.Duration
	// Lock, when set, makes the items this node sends on one output run under a named lock,
	// with the decision checked again once the lock is held (see LockSpec).
	Lock *LockSpec
}

// LockSpec is double-checked locking for a branch. When the node sends items on Port, the run
// takes the flow's lock Name (waiting for any other run holding it), then runs the nodes from
// RecheckFrom to this node again, on fresh static data and with the items RecheckFrom received.
// If the node then still sends items on Port, they go on under the lock, which is released
// when Until has run (or when the run ends, without Until); if not, the lock is released at
// once and the fresh items take the other outputs. Runs whose items never reach Port never
// touch the lock.
type LockSpec struct {
	Name string
	Port int
	// RecheckFrom is the first node run again; the node itself when it reads static data
	// directly. Path lists the nodes from RecheckFrom to this node, this node last, with the
	// port each delivers on to the next.
	RecheckFrom *FlowNode
	Path        []LockStep
	Until       *FlowNode
}

// LockStep is one node of a recheck path and the port it delivers to the next step on.
type LockStep struct {
	Node *FlowNode
	Port int
}
