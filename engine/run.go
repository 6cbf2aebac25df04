package engine

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/flowd/flowd/engine/redact"
)

// Item is one JSON object flowing between nodes. Values are what encoding/json decodes into
// (map[string]any, []any, string, float64 or int64, bool, nil); nodes must not keep Go-only
// types such as time.Time in items — ToJSONValue converts them.
type Item = map[string]any

// RunStatus is where a run or node execution stands.
type RunStatus string

const (
	StatusRunning  RunStatus = "running"
	StatusSuccess  RunStatus = "success"
	StatusError    RunStatus = "error"
	StatusCanceled RunStatus = "canceled"
	// StatusCrashed marks a run that was running when the process died; set at recovery.
	StatusCrashed RunStatus = "crashed"
)

// Run is the record of one execution of a flow: what started it, how it ended and what every
// node did. It is what `flowd run` prints, what the API returns and what the UI draws —
// redacted (see Redacted).
type Run struct {
	ID          string    `json:"id"`
	FlowID      string    `json:"flowId"`
	FlowName    string    `json:"flowName,omitempty"`
	FlowVersion string    `json:"flowVersion"`
	Trigger     string    `json:"trigger"` // name of the trigger node that started the run
	Mode        string    `json:"mode"`    // manual, webhook or schedule
	Status      RunStatus `json:"status"`
	StartedAt   time.Time `json:"startedAt"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	Error       string    `json:"error,omitempty"`
	ErrorNode   string    `json:"errorNode,omitempty"`
	// Nodes holds one entry per node execution, in execution order. A node with two incoming
	// connections that received two deliveries appears twice.
	Nodes []NodeRun `json:"nodes"`

	// redactor is set on the live record Executor.Run returns: it redacts the record's JSON.
	redactor *redact.Redactor
}

// Duration is how long the run took, or has taken so far.
func (r *Run) Duration() time.Duration {
	if r.FinishedAt.IsZero() {
		return time.Since(r.StartedAt)
	}
	return r.FinishedAt.Sub(r.StartedAt)
}

// NodeRun is one execution of one node in a run.
type NodeRun struct {
	Seq       int       `json:"seq"` // 0-based position in execution order
	Node      string    `json:"node"`
	Type      string    `json:"type"`
	Status    RunStatus `json:"status"`
	StartedAt time.Time `json:"startedAt"`
	// DurationMicros is the wall time of the node including retries, in microseconds.
	DurationMicros int64 `json:"durationUs"`
	Tries          int   `json:"tries"`
	// Input is the items the node received; Output has one slice per output port, named by
	// Ports (for If: "true", "false"; with onError=errorOutput a last port "error").
	Input  []Item   `json:"input"`
	Output [][]Item `json:"output"`
	Ports  []string `json:"ports"`
	// InputCount and OutputCounts are the real item counts; they differ from the lengths of
	// Input and Output only when the stored payload was Truncated.
	InputCount   int    `json:"inputCount"`
	OutputCounts []int  `json:"outputCounts"`
	Truncated    bool   `json:"truncated,omitempty"`
	Error        string `json:"error,omitempty"`
	// Static lists the static-data keys this node committed, with the value before and after.
	Static []StaticChange `json:"static,omitempty"`
	// Recheck marks an execution repeated under a lock to check a decision again on fresh
	// data (see LockSpec).
	Recheck bool `json:"recheck,omitempty"`
}

// StaticChange is one committed change of one static-data key.
type StaticChange struct {
	Key     string `json:"key"`
	Before  any    `json:"before"`
	After   any    `json:"after"`
	Deleted bool   `json:"deleted,omitempty"`
}

// StaticValue is one static-data key's value and the version it was committed at. Versions
// start at 1 and grow by one with each commit of that key.
type StaticValue struct {
	Value   any
	Version int64
}

// StaticCommit is what one node execution writes to static data, applied atomically.
type StaticCommit struct {
	FlowID string
	// Reads maps each key the node read to the version it saw (0: absent). The commit fails
	// with ErrStaticConflict when any of them has changed since. ReadAll means the node read
	// the whole object, so a change to any key is a conflict; then Reads has every key seen.
	Reads   map[string]int64
	ReadAll bool
	// Changes are applied in order; Before is filled for the run record.
	Changes []StaticChange
}

var idState struct {
	sync.Mutex
	lastMS uint64
	seq    uint64
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewRunID returns a 26-character, lexically time-sortable id in ULID layout: 48 bits of
// millisecond time, then 80 bits that start random at each new millisecond and count up within
// one, so that ids made by one process sort in creation order.
func NewRunID(now time.Time) string {
	ms := uint64(now.UnixMilli())
	idState.Lock()
	if ms <= idState.lastMS {
		ms = idState.lastMS // the clock went back or stood still: keep counting
		idState.seq++
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		idState.lastMS = ms
		idState.seq = binary.BigEndian.Uint64(b[:]) >> 1 // leave room to count up
	}
	seq := idState.seq
	idState.Unlock()

	var v [16]byte
	binary.BigEndian.PutUint64(v[0:8], ms<<16) // top 48 bits: time; next 16: zero
	binary.BigEndian.PutUint64(v[8:16], seq)
	return encodeCrockford(v)
}

func encodeCrockford(v [16]byte) string {
	var out [26]byte
	// 130 bits of room for 128 bits of value: read 5 bits at a time from the top.
	hi := binary.BigEndian.Uint64(v[0:8])
	lo := binary.BigEndian.Uint64(v[8:16])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// FirstRunIDAt returns the smallest run id NewRunID can return for a time at or after t, so
// that `id >= FirstRunIDAt(t)` selects the runs started since t.
func FirstRunIDAt(t time.Time) string {
	var v [16]byte
	binary.BigEndian.PutUint64(v[0:8], uint64(t.UnixMilli())<<16)
	return encodeCrockford(v)
}
