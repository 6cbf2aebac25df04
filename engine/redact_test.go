package engine

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine/redact"
)

const (
	testAPIKey = "k3y-0f-the-partner-api"
	testToken  = "tok-1234567890"
)

// secretFlow calls a partner API with a key from $secrets, keeps the token it got in static
// data, and passes both on.
const secretFlow = `{"id": "secret-flow", "nodes": [
	{"name": "t", "type": "trigger"},
	{"name": "call", "type": "emit", "parameters": {"items": [
		{"url": "https://api.example.com/v1?key={{ $secrets.API_KEY }}", "accessToken": "{{ $json.token }}", "n": 1}
	]}},
	{"name": "keep token", "type": "set", "parameters": {"key": "accessToken", "value": "{{ $json.accessToken }}"}},
	{"name": "keep config", "type": "set", "parameters": {"key": "config",
		"value": "{{ {'endpoint': 'https://api.example.com', 'key': $secrets.API_KEY, 'note': 'Bearer ' + $json.accessToken} }}"}},
	{"name": "check", "type": "split", "parameters": {"cond": "{{ $json.n == 1 ? true : fail('no') }}"}},
	{"name": "out", "type": "pass"}
], "connections": {"t": ["call"], "call": ["keep token"], "keep token": ["keep config"], "keep config": ["check"], "check": {"true": ["out"]}}}`

func secretExecutor(t *testing.T) (*Executor, *memStore) {
	t.Helper()
	secrets, err := NewSecretStore(map[string]string{"API_KEY": testAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	return &Executor{Store: store, Logger: quiet, Env: map[string]string{}, Secrets: secrets}, store
}

func TestRunRecordsAreRedactedBeforeTheyAreStored(t *testing.T) {
	x, store := secretExecutor(t)
	f := mustLoad(t, secretFlow)
	live, err := x.Run(context.Background(), f, RunRequest{Items: []Item{{"token": testToken, "password": "hunter2hunter2"}}})
	if err != nil || live.Status != StatusSuccess {
		t.Fatalf("run: %v %s %s", err, live.Status, live.Error)
	}

	// The live data reached the end unchanged: a webhook answering with the last node's
	// output gets the real values.
	last := live.Nodes[len(live.Nodes)-1].Output[0][0]
	if last["accessToken"] != testToken || !strings.Contains(last["url"].(string), testAPIKey) {
		t.Errorf("live output = %v", last)
	}
	// Static data keeps its real values: the next run needs the token back.
	if v, _ := store.get(f.ID, "accessToken"); v != testToken {
		t.Errorf("static accessToken = %v", v)
	}
	if v, _ := store.get(f.ID, "config"); v.(map[string]any)["key"] != testAPIKey {
		t.Errorf("static config = %v", v)
	}

	// What the store got, and the live record's JSON, hold neither.
	stored := store.finished[0]
	liveJSON, err := json.Marshal(live)
	if err != nil {
		t.Fatal(err)
	}
	storedJSON, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"stored record": storedJSON, "live record's JSON": liveJSON} {
		for _, leak := range []string{testAPIKey, testToken, "hunter2"} {
			if strings.Contains(string(data), leak) {
				t.Errorf("the %s holds %q:\n%s", name, leak, data)
			}
		}
	}
	if string(liveJSON) != string(storedJSON) {
		t.Errorf("the live record's JSON differs from the stored record:\n%s\n%s", liveJSON, storedJSON)
	}
	if !reflect.DeepEqual(live.Redacted(), stored) {
		t.Error("Redacted() differs from the stored record")
	}

	call := stored.Nodes[1]
	wantOut := Item{"url": "https://api.example.com/v1?key=" + redact.Placeholder("API_KEY"), "accessToken": redact.Mask, "n": int64(1)}
	if !reflect.DeepEqual(call.Output[0][0], wantOut) {
		t.Errorf("stored output of call = %#v\nwant %#v", call.Output[0][0], wantOut)
	}
	if got := stored.Nodes[0].Input[0]; got["password"] != redact.Mask || got["token"] != redact.Mask {
		t.Errorf("stored trigger input = %v", got)
	}
	keepToken, keepConfig := stored.Nodes[2], stored.Nodes[3]
	if len(keepToken.Static) != 1 || keepToken.Static[0].After != redact.Mask || keepToken.Static[0].Before != nil {
		t.Errorf("stored static change of the token = %+v", keepToken.Static)
	}
	wantConfig := map[string]any{"endpoint": "https://api.example.com", "key": redact.Placeholder("API_KEY"), "note": "Bearer " + redact.Mask}
	if len(keepConfig.Static) != 1 || !reflect.DeepEqual(keepConfig.Static[0].After, wantConfig) {
		t.Errorf("stored static change of the config = %+v", keepConfig.Static)
	}
	// Counts and structure are kept.
	if call.InputCount != 1 || !reflect.DeepEqual(call.OutputCounts, []int{1}) || stored.Nodes[4].Ports[0] != "true" {
		t.Errorf("stored record lost structure: %+v", call)
	}
	// The live record's items were not touched by redaction.
	if live.Nodes[0].Input[0]["password"] != "hunter2hunter2" {
		t.Error("redaction changed the live record")
	}
}

func TestRunErrorsAreRedacted(t *testing.T) {
	src := `{"nodes": [
		{"name": "t", "type": "trigger"},
		{"name": "soft", "type": "split", "onError": "continue", "parameters": {"cond": "{{ fail('rejected key ' + $secrets.API_KEY) }}"}},
		{"name": "hard", "type": "split", "parameters": {"cond": "{{ fail('still rejected: ' + $secrets.API_KEY) }}"}}
	], "connections": {"t": ["soft"], "soft": {"false": ["hard"]}}}`
	x, store := secretExecutor(t)
	live, err := x.Run(context.Background(), mustLoad(t, src), RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if live.Status != StatusError || live.ErrorNode != "hard" {
		t.Fatalf("status %s at %q: %s", live.Status, live.ErrorNode, live.Error)
	}
	// Errors are redacted in the live record too: callers show them (a webhook answering a
	// failed run with its error).
	if strings.Contains(live.Error, testAPIKey) || !strings.Contains(live.Error, "still rejected: "+redact.Placeholder("API_KEY")) {
		t.Errorf("live run error %q", live.Error)
	}
	if strings.Contains(live.Nodes[2].Error, testAPIKey) {
		t.Errorf("live node error %q", live.Nodes[2].Error)
	}
	// An item a node passed on with its error is live data: unchanged in the live record,
	// redacted in the stored one.
	if !strings.Contains(live.Nodes[1].Output[1][0]["error"].(string), testAPIKey) {
		t.Errorf("live item error %v", live.Nodes[1].Output[1][0])
	}
	stored := store.finished[0]
	if got, _ := stored.Nodes[1].Output[1][0]["error"].(string); !strings.HasSuffix(got, ": rejected key "+redact.Placeholder("API_KEY")) {
		t.Errorf("stored item error %q", got)
	}
	if strings.Contains(stored.Error+stored.Nodes[1].Error+stored.Nodes[2].Error, testAPIKey) {
		t.Errorf("stored errors %q, %q, %q", stored.Error, stored.Nodes[1].Error, stored.Nodes[2].Error)
	}
}

func TestRunUsesTheGivenRedactor(t *testing.T) {
	keys, err := redact.NewKeys("iban")
	if err != nil {
		t.Fatal(err)
	}
	src := `{"nodes": [{"name": "t", "type": "trigger"}]}`
	store := newMemStore()
	x := &Executor{Store: store, Logger: quiet, Redactor: redact.New(keys, map[string]string{"OTHER": "not-named-by-the-flow"})}
	if _, err := x.Run(context.Background(), mustLoad(t, src), RunRequest{Items: []Item{{"iban": "DE89", "note": "not-named-by-the-flow"}}}); err != nil {
		t.Fatal(err)
	}
	got := store.finished[0].Nodes[0].Output[0][0]
	if want := (Item{"iban": redact.Mask, "note": redact.Placeholder("OTHER")}); !reflect.DeepEqual(got, want) {
		t.Errorf("stored output %v, want %v", got, want)
	}
}

func TestRunSecretsReachExpressions(t *testing.T) {
	src := `{"nodes": [
		{"name": "t", "type": "trigger"},
		{"name": "e", "type": "emit", "parameters": {"items": [{"auth": "{{ $secrets.API_KEY }}", "missing": "{{ $secrets.NOT_SET ?? 'none' }}"}]}}
	], "connections": {"t": ["e"]}}`
	x, _ := secretExecutor(t)
	r, err := x.Run(context.Background(), mustLoad(t, src), RunRequest{})
	if err != nil || r.Status != StatusSuccess {
		t.Fatalf("%v %s", err, r.Error)
	}
	if got := r.Nodes[1].Output[0][0]; got["auth"] != testAPIKey || got["missing"] != "none" {
		t.Errorf("output %v", got)
	}
	// A node test gives secrets with WithSecrets.
	n, err := (&Loader{Registry: testRegistry(t)}).LoadNode("emit", `{"items": [{"v": "{{ $secrets.A }}"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ExecNode(context.Background(), n, nil, nil, WithSecrets(map[string]string{"A": "x"}))
	if err != nil || res.Ports[0][0]["v"] != "x" {
		t.Fatalf("%v %v", err, res)
	}
}

func TestStoredRunsMarshalAsTheyAre(t *testing.T) {
	// A record read back from a store has no Redactor: its JSON is its fields, as before.
	r := &Run{ID: "r", Error: "Bearer abc", Nodes: []NodeRun{{Node: "n", Output: [][]Item{{{"token": "t"}}}}}}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Run
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Error != "Bearer abc" || back.Nodes[0].Output[0][0]["token"] != "t" || r.Redacted() != r {
		t.Errorf("round trip changed the record: %s", data)
	}
}

func TestRunWithoutSecretsOrRedactorStoresAsItIs(t *testing.T) {
	store := newMemStore()
	x := &Executor{Store: store, Logger: quiet}
	if _, err := x.Run(context.Background(), mustLoad(t, `{"nodes": [{"name": "t", "type": "trigger"}]}`),
		RunRequest{Items: []Item{{"token": "t-1"}}}); err != nil {
		t.Fatal(err)
	}
	if got := store.finished[0].Nodes[0].Output[0][0]["token"]; got != "t-1" {
		t.Errorf("stored %v", got)
	}
}

func TestRedactedSharesWhatItDoesNotMask(t *testing.T) {
	x, _ := secretExecutor(t)
	f := mustLoad(t, `{"id": "mixed", "nodes": [
		{"name": "t", "type": "trigger"},
		{"name": "call", "type": "emit", "parameters": {"items": [{"n": 1}, {"password": "hunter2hunter2"}, {"n": 3}]}},
		{"name": "out", "type": "pass"}
	], "connections": {"t": ["call"], "call": ["out"]}}`)
	live, err := x.Run(context.Background(), f, RunRequest{Items: []Item{{"plain": "text"}}})
	if err != nil || live.Status != StatusSuccess {
		t.Fatalf("run: %v %s %s", err, live.Status, live.Error)
	}
	stored := live.Redacted()
	same := func(a, b []Item) bool { return len(a) > 0 && &a[0] == &b[0] }
	// Nothing to mask: the trigger's items and ports are the live ones.
	if !same(stored.Nodes[0].Input, live.Nodes[0].Input) || !same(stored.Nodes[0].Output[0], live.Nodes[0].Output[0]) {
		t.Error("the trigger's items were copied, with nothing to mask")
	}
	// One item masked: a new list, with the other items shared and the live one untouched.
	for _, got := range [][]Item{stored.Nodes[1].Output[0], stored.Nodes[2].Input, stored.Nodes[2].Output[0]} {
		if same(got, live.Nodes[1].Output[0]) {
			t.Fatal("a list with a masked item is the live list")
		}
		if got[1]["password"] != redact.Mask || got[0]["n"] != int64(1) || got[2]["n"] != int64(3) {
			t.Errorf("stored items = %v", got)
		}
		if reflect.ValueOf(got[0]).Pointer() != reflect.ValueOf(live.Nodes[1].Output[0][0]).Pointer() {
			t.Error("an item with nothing to mask was copied")
		}
	}
	if live.Nodes[1].Output[0][1]["password"] != "hunter2hunter2" {
		t.Error("redaction changed the live record")
	}
}
