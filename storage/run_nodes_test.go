package storage

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// normalized is r as GetRun returns it once stored: times in UTC to the microsecond, Nodes,
// Ports and OutputCounts never nil.
func normalized(r *engine.Run) *engine.Run {
	micro := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return time.UnixMicro(t.UnixMicro()).UTC()
	}
	c := *r
	c.StartedAt, c.FinishedAt = micro(r.StartedAt), micro(r.FinishedAt)
	c.Nodes = make([]engine.NodeRun, len(r.Nodes))
	for i, nr := range r.Nodes {
		nr.StartedAt = micro(nr.StartedAt)
		if nr.Ports == nil {
			nr.Ports = []string{}
		}
		if nr.OutputCounts == nil {
			nr.OutputCounts = []int{}
		}
		c.Nodes[i] = nr
	}
	return &c
}

// node is a successful execution of a one-port node that passes items on.
func node(seq int, name string, at time.Time, items []engine.Item) engine.NodeRun {
	return engine.NodeRun{Seq: seq, Node: name, Type: "noOp", Status: engine.StatusSuccess,
		StartedAt: at, DurationMicros: 3, Tries: 1, Input: items, Output: [][]engine.Item{items},
		Ports: []string{"main"}, InputCount: len(items), OutputCounts: []int{len(items)}}
}

// nodeShapes are runs whose node records cover what the stored form must keep apart.
func nodeShapes(t *testing.T) map[string]*engine.Run {
	run := func(id string, nodes ...engine.NodeRun) *engine.Run {
		r := testRun(id, "shapes", 0)
		r.Status, r.FinishedAt, r.Nodes = engine.StatusSuccess, t0.Add(time.Second), nodes
		return r
	}
	big := []engine.Item{{"big": strings.Repeat("b", 300), "n": int64(1)}}
	repeats := []engine.NodeRun{
		node(0, "trigger", t0, big),
		node(1, "pass", t0.Add(time.Millisecond), big),
		{Seq: 2, Node: "split", Type: "if", Status: engine.StatusSuccess, StartedAt: t0.Add(2 * time.Millisecond), Tries: 1,
			Input: big, Output: [][]engine.Item{{{"other": true}}, big}, Ports: []string{"true", "false"},
			InputCount: 1, OutputCounts: []int{1, 1}},
		node(3, "tiny", t0.Add(3*time.Millisecond), []engine.Item{{}}),
		node(4, "tiny again", t0.Add(4*time.Millisecond), []engine.Item{{}}),
		node(5, "back", t0.Add(5*time.Millisecond), big),
	}
	return map[string]*engine.Run{
		"no nodes":          run("no-nodes"),
		"token flow":        loadRun(t, "token-run.json"),
		"token refresh":     loadRun(t, "token-refresh-run.json"),
		"finished with v1":  finishedRun("v1-shapes"),
		"repeated payloads": run("repeats", repeats...),
		"every field set": run("explicit", engine.NodeRun{
			Seq: 5, Node: "odd \"name\"\n<&> ü 🙂", Type: "code", Status: engine.StatusError,
			StartedAt: t0.Add(-5 * time.Millisecond), DurationMicros: 0, Tries: 0,
			InputCount: 3, OutputCounts: []int{2, 0}, Truncated: true, Error: "boom \"<&>\" ü",
			Static: []engine.StaticChange{
				{Key: "k", Before: map[string]any{"a": []any{int64(1), "x"}}, After: nil},
				{Key: "gone", Before: "x", Deleted: true},
			},
			Recheck: true,
		}),
		"empty, not nil": run("empty", engine.NodeRun{Node: "e", Type: "code", Status: engine.StatusSuccess,
			StartedAt: t0, Tries: 1, Input: []engine.Item{}, Output: [][]engine.Item{},
			Ports: []string{}, OutputCounts: []int{}}),
		"nil and empty ports": run("ports", engine.NodeRun{Node: "p", Type: "if", Status: engine.StatusSuccess,
			StartedAt: t0, Tries: 2, Input: []engine.Item{{"a": int64(1)}},
			Output: [][]engine.Item{nil, {}, {{"a": int64(1)}}}, Ports: []string{"a", "b", "c"},
			InputCount: 1, OutputCounts: []int{0, 0, 1}}),
		"zero start time": run("zero", engine.NodeRun{Node: "z", Type: "noOp", Status: engine.StatusCanceled}),
		"numbers": run("numbers", node(0, "n", t0, []engine.Item{{
			"max": int64(math.MaxInt64), "min": int64(math.MinInt64), "half": 1.5, "neg": -0.25,
			"huge": 1e300, "list": []any{int64(1), "x", nil, true, []any{}, map[string]any{}},
		}})),
	}
}

func TestNodeRecordsRoundTrip(t *testing.T) {
	ctx := context.Background()
	for name, r := range nodeShapes(t) {
		t.Run(name, func(t *testing.T) {
			s := openTest(t)
			started := *r
			started.Status, started.FinishedAt, started.Error, started.ErrorNode, started.Nodes =
				engine.StatusRunning, time.Time{}, "", "", nil
			if err := s.CreateRun(ctx, &started); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			bulk := *r
			bulk.ID = r.ID + "-bulk"
			if err := s.InsertRuns(ctx, []*engine.Run{&bulk}); err != nil {
				t.Fatal(err)
			}
			for _, want := range []*engine.Run{r, &bulk} {
				got, err := s.GetRun(ctx, want.ID)
				if err != nil {
					t.Fatal(err)
				}
				if w := normalized(want); !reflect.DeepEqual(got, w) {
					t.Errorf("run %s:\ngot  %+v\nwant %+v", want.ID, got, w)
					for i := range min(len(got.Nodes), len(w.Nodes)) {
						if !reflect.DeepEqual(got.Nodes[i], w.Nodes[i]) {
							t.Errorf("node %d:\ngot  %#v\nwant %#v", i, got.Nodes[i], w.Nodes[i])
						}
					}
				}
			}
		})
	}
}

func TestRepeatedPayloadsStoredOnce(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := nodeShapes(t)["repeated payloads"]
	if err := s.InsertRuns(ctx, []*engine.Run{r}); err != nil {
		t.Fatal(err)
	}
	var doc string
	if err := s.r.QueryRowContext(ctx, `SELECT nodes FROM runs WHERE id = ?`, r.ID).Scan(&doc); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(doc, `"big":`); n != 1 {
		t.Errorf("the item passed through 4 nodes is stored %d times, want once:\n%s", n, doc)
	}

	got, err := s.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Every reference decodes to items of its own.
	got.Nodes[0].Input[0]["big"] = "changed"
	for i, nr := range got.Nodes[1:] {
		if nr.Node != "tiny" && nr.Node != "tiny again" && nr.Input[0]["big"] == "changed" {
			t.Errorf("node %d shares its input with node 0", i+1)
		}
	}
	if got.Nodes[0].Output[0][0]["big"] == "changed" {
		t.Error("node 0 shares its output with its input")
	}
}

func TestDecodeNodesRejectsBadRecords(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":               `[{"n":`,
		"not an array":           `{"n":"a"}`,
		"reference ahead":        `[{"n":"a","t":"x","i":0}]`,
		"reference out of range": `[{"n":"a","t":"x","i":[{}],"o":[7]}]`,
		"negative reference":     `[{"n":"a","t":"x","i":[{}],"o":[-1]}]`,
		"string reference":       `[{"n":"a","t":"x","i":"0"}]`,
		"items not objects":      `[{"n":"a","t":"x","i":[1,2]}]`,
		"ports not an array":     `[{"n":"a","t":"x","o":{}}]`,
		"bad static changes":     `[{"n":"a","t":"x","st":{"key":1}}]`,
	} {
		t.Run(name, func(t *testing.T) {
			if nodes, err := decodeNodes([]byte(doc), 0); err == nil {
				t.Errorf("decoded %+v, want an error", nodes)
			}
		})
	}
}

func TestDecodeJSONStrings(t *testing.T) {
	for _, raw := range []string{`"plain"`, `""`, `"ü 🙂"`, `"esc\"aped"`, `"\u00fc"`, "\"bad \xff\"", `"tab\t"`, `12`, `null`, `{"a":"b"}`} {
		var want any
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		want = engine.PlainNumbers(want)
		var got any
		if err := decodeJSON([]byte(raw), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeJSON(%s) = %#v, %v; want %#v", raw, got, err, want)
		}
	}
	var v any
	if err := decodeJSON([]byte(`"unterminated`), &v); err == nil {
		t.Errorf("decoded %#v from an unterminated string", v)
	}
}
