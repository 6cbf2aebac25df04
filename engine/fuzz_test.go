package engine_test

// Fuzz targets for the engine's input surfaces: flow files and expression templates. Each
// asserts properties of the result, not only that nothing panics. `make fuzz` runs each for a
// few seconds; testdata/fuzz/<Target>/ holds the committed seeds and every regression found.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// hangLimit is how long one input may take before the target calls it a hang. go test -fuzz
// has no per-input timeout: without this a hang stalls the fuzzer and the input is never
// saved. It is orders of magnitude above what any input takes (microseconds to milliseconds),
// so it measures nothing; it only turns "never returns" into a failure with the input.
const hangLimit = 10 * time.Second

// finishes runs fn and fails t if it panics or has not returned within hangLimit.
func finishes(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Sprintf("%v\n%s", p, debug.Stack())
				return
			}
			done <- ""
		}()
		fn()
	}()
	select {
	case p := <-done:
		if p != "" {
			t.Fatalf("%s panicked: %s", what, p)
		}
	case <-time.After(hangLimit):
		t.Fatalf("%s did not return within %v", what, hangLimit)
	}
}

// addFiles adds every file matching the patterns (relative to this package) as a seed.
// Missing files are skipped: ../../shared is beside the project, not in it.
func addFiles(f *testing.F, patterns ...string) {
	for _, pat := range patterns {
		paths, err := filepath.Glob(pat)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzLoad feeds arbitrary bytes to the loader as a flow file. Properties: it returns a flow
// or problems; a flow comes with warnings only, no flow with at least one error; every
// problem names the file, has a one-line message and a position inside the input; problems
// come in file order; loading is deterministic; and a flow that loads keeps the loader's
// promises (unique names, an acyclic graph, edges only to non-triggers, sane settings).
func FuzzLoad(f *testing.F) {
	addFiles(f, "../flows/*.json", "../testdata/invalid/*.json", "../../shared/seed/*.json")
	loader := &engine.Loader{Registry: nodes.NewRegistry()}
	f.Fuzz(func(t *testing.T, src []byte) {
		var flow, again *engine.Flow
		var probs, probsAgain engine.Problems
		before := allocatedBytes()
		finishes(t, "Load", func() { flow, probs = loader.Load("fuzz.json", src) })
		if n := allocatedBytes() - before; n > loadAllocLimit(len(src)) {
			t.Fatalf("loading %d bytes allocated %d MiB", len(src), n>>20)
		}
		finishes(t, "Load", func() { again, probsAgain = loader.Load("fuzz.json", src) })
		if flow == nil && len(probs) == 0 {
			t.Fatal("no flow and no problems")
		}
		if (flow == nil) != (len(probs.Errors()) > 0) {
			t.Fatalf("flow %v with errors %v", flow != nil, probs.Errors())
		}
		checkProblems(t, src, probs)
		if probs.Error() != probsAgain.Error() || describeFlow(flow) != describeFlow(again) {
			t.Fatalf("two loads of the same bytes differ:\n%s\n%s\n---\n%s\n%s",
				probs.Error(), describeFlow(flow), probsAgain.Error(), describeFlow(again))
		}
		if flow != nil {
			checkFlow(t, flow)
		}
	})
}

// loadAllocLimit bounds what loading a file of n bytes may allocate: linear in its size, with
// room for expr, which allocates tens of kilobytes to compile even a short expression.
func loadAllocLimit(n int) uint64 { return 64<<20 + 16<<10*uint64(n) }

// checkProblems asserts each problem is a one-line, positioned message about this file, and
// that they are sorted by position.
func checkProblems(t *testing.T, src []byte, probs engine.Problems) {
	t.Helper()
	lines := bytes.Split(src, []byte("\n"))
	var prev engine.Position
	for _, p := range probs {
		if p.File != "fuzz.json" {
			t.Errorf("problem names file %q: %v", p.File, p)
		}
		if strings.TrimSpace(p.Msg) == "" || strings.ContainsAny(p.Msg, "\n\r") {
			t.Errorf("problem message is empty or not one line: %q", p.Msg)
		}
		pos := p.Pos
		if pos.Line < 1 || pos.Line > len(lines) || pos.Col < 1 || pos.Col > len(lines[pos.Line-1])+1 {
			t.Errorf("position %v outside the input (%d lines): %v", pos, len(lines), p)
		}
		if pos.Line < prev.Line || pos.Line == prev.Line && pos.Col < prev.Col {
			t.Errorf("problem at %v comes after one at %v", pos, prev)
		}
		prev = pos
	}
}

// describeFlow renders what the loader decided about a flow, for the determinism check.
func describeFlow(f *engine.Flow) string {
	if f == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q %s %v %s\n", f.ID, f.Name, f.Version, f.Settings.Timeout, f.Settings.TimezoneName)
	for _, n := range f.Nodes {
		s := n.Settings
		fmt.Fprintf(&b, "%q %s %v %v %d %v %s %v %v [", n.Name, n.Type.Name, n.Ports, s.RetryOnFail, s.MaxTries, s.WaitBetweenTries, s.OnError, s.Timeout, n.Inputs)
		if l := s.Lock; l != nil {
			fmt.Fprintf(&b, "lock %q %d %q ", l.Name, l.Port, l.RecheckFrom.Name)
			for _, st := range l.Path {
				fmt.Fprintf(&b, "%q/%d ", st.Node.Name, st.Port)
			}
			if l.Until != nil {
				fmt.Fprintf(&b, "until %q ", l.Until.Name)
			}
		}
		for port, next := range n.Next {
			for _, d := range next {
				fmt.Fprintf(&b, "%d→%q ", port, d.Name)
			}
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// checkFlow asserts the promises a loaded flow makes to the executor.
func checkFlow(t *testing.T, f *engine.Flow) {
	t.Helper()
	if f.ID == "" || strings.ContainsAny(f.ID, "/ \t\n") {
		t.Errorf("flow id %q", f.ID)
	}
	if f.Settings.Timeout <= 0 || f.Settings.Location == nil {
		t.Errorf("settings %+v", f.Settings)
	}
	index := map[*engine.FlowNode]int{}
	for i, n := range f.Nodes {
		if f.Node(n.Name) != n {
			t.Errorf("node %q is not found by its name", n.Name)
		}
		index[n] = i
	}
	inputs := make([]int, len(f.Nodes))
	for _, n := range f.Nodes {
		s := n.Settings
		if s.MaxTries < 1 || s.MaxTries > 100 || s.Timeout < 0 || s.WaitBetweenTries < 0 {
			t.Errorf("node %q settings %+v", n.Name, s)
		}
		if n.Impl == nil || len(n.Next) != len(n.Ports) || len(n.Ports) == 0 {
			t.Errorf("node %q: impl %v, %d port lists for ports %v", n.Name, n.Impl != nil, len(n.Next), n.Ports)
		}
		if l := s.Lock; l != nil && (l.Port < 0 || l.Port >= len(n.Ports) || len(l.Path) == 0 || l.Path[len(l.Path)-1].Node != n) {
			t.Errorf("node %q lock %+v", n.Name, l)
		}
		for _, next := range n.Next {
			for _, d := range next {
				if _, ok := index[d]; !ok || d.Type.Trigger {
					t.Errorf("edge %q → %q: target not in the flow, or a trigger", n.Name, d.Name)
				}
				inputs[index[d]]++
			}
		}
	}
	for i, n := range f.Nodes {
		if n.Inputs != inputs[i] {
			t.Errorf("node %q counts %d inputs, has %d", n.Name, n.Inputs, inputs[i])
		}
	}
	for _, n := range f.Triggers {
		if !n.Type.Trigger {
			t.Errorf("%q listed as a trigger", n.Name)
		}
	}
	// Acyclic: every node leaves the stack before it is seen again.
	state := make([]int, len(f.Nodes)) // 0 new, 1 on the path, 2 done
	var visit func(int)
	visit = func(i int) {
		state[i] = 1
		for _, next := range f.Nodes[i].Next {
			for _, d := range next {
				switch state[index[d]] {
				case 1:
					t.Fatalf("cycle through %q", d.Name)
				case 0:
					visit(index[d])
				}
			}
		}
		state[i] = 2
	}
	for i := range f.Nodes {
		if state[i] == 0 {
			visit(i)
		}
	}
}

// FuzzLoadEscapes puts arbitrary text into a flow's strings, written with a fuzzed choice of
// JSON escapes (\u00e9 for é, \ud83d\ude00 for 😀, \" or \u0022 …), and checks that problems
// inside those strings point at the right byte of the file: the decoded text and the file
// differ wherever an escape stands. The template's own error gives the place in the decoded
// text; this target maps it to the file independently. Code statements are checked less
// strictly: their problems must point inside the statement's literal.
func FuzzLoadEscapes(f *testing.F) {
	f.Add("$static.a = 1 +", "{{ $json.a +* 2 }}", uint64(0))
	f.Add("delete $static.a b", "\"quoted\" 😀 {{ x y }}", uint64(0xf0f0))
	loader := &engine.Loader{Registry: nodes.NewRegistry()}
	f.Fuzz(func(t *testing.T, code, ret string, escapes uint64) {
		code, ret = strings.ToValidUTF8(code, "?"), strings.ToValidUTF8(ret, "?")
		var src bytes.Buffer
		src.WriteString(`{"nodes": [{"name": "t", "type": "webhook", "parameters": {"path": "p"}},` + "\n")
		src.WriteString(`{"name": "c", "type": "code", "parameters": {"code": [`)
		codeLit := writeEscaped(&src, code, escapes)
		src.WriteString("],\n" + `"return": {"x": `)
		retLit := writeEscaped(&src, ret, escapes>>7|escapes<<57)
		src.WriteString(`}}}], "connections": {"t": ["c"]}}`)
		var probs engine.Problems
		finishes(t, "Load", func() { _, probs = loader.Load("fuzz.json", src.Bytes()) })
		checkProblems(t, src.Bytes(), probs)

		var want *engine.Problem
		if _, err := engine.CompileTemplate(ret); err != nil {
			var ee *engine.ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("compile error %T: %v", err, err)
			}
			want = &engine.Problem{Pos: positionAt(src.Bytes(), retLit.at(ee.Offset)), Msg: `node "c": parameters.return.x: ` + err.Error()}
		}
		found := false
		for _, p := range probs {
			switch {
			case want != nil && p.Msg == want.Msg:
				found = true
				if p.Pos != want.Pos {
					t.Errorf("%v: want position %v", p, want.Pos)
				}
			case strings.HasPrefix(p.Msg, `node "c": parameters.code[0]: `):
				if lo, hi := positionAt(src.Bytes(), codeLit.start), positionAt(src.Bytes(), codeLit.end); p.Pos.Line < lo.Line ||
					p.Pos.Line == lo.Line && p.Pos.Col < lo.Col || p.Pos.Line > hi.Line || p.Pos.Line == hi.Line && p.Pos.Col > hi.Col {
					t.Errorf("%v: outside the statement's literal, %v to %v", p, lo, hi)
				}
			}
		}
		if want != nil && !found {
			t.Errorf("no problem %q in:\n%v", want.Msg, probs)
		}
	})
}

// literal is where a JSON string literal was written: its quotes, and the file offset of each
// byte of the decoded text.
type literal struct {
	start, end int // offsets of the opening and closing quote
	offs       []int
}

// at returns the file offset of decoded byte i (the closing quote for the end).
func (l literal) at(i int) int {
	if i >= len(l.offs) {
		return l.end
	}
	return l.offs[i]
}

// writeEscaped writes s as a JSON string, escaping character i when bit i%64 of escapes is set
// (and always where JSON requires it), and records where each decoded byte landed.
func writeEscaped(b *bytes.Buffer, s string, escapes uint64) literal {
	l := literal{start: b.Len()}
	b.WriteByte('"')
	i := 0
	for _, r := range s {
		at := b.Len()
		esc := escapes>>(i%64)&1 == 1
		switch {
		case r == '"' || r == '\\':
			if esc {
				fmt.Fprintf(b, "\\u%04x", r)
			} else {
				b.WriteByte('\\')
				b.WriteRune(r)
			}
		case r < 0x20 || esc:
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, "\\u%04x\\u%04x", r1, r2)
			} else {
				fmt.Fprintf(b, "\\u%04x", r)
			}
		default:
			b.WriteRune(r)
		}
		for range utf8.RuneLen(r) {
			l.offs = append(l.offs, at)
		}
		i++
	}
	l.end = b.Len()
	b.WriteByte('"')
	return l
}

// positionAt is the 1-based line and byte column of offset off in src.
func positionAt(src []byte, off int) engine.Position {
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	return engine.Position{Line: line, Col: off - bytes.LastIndexByte(src[:off], '\n')}
}

// suggestAllocLimit bounds what one did-you-mean suggestion may allocate, however long the
// strings: the loader makes one per unknown key, type and node name.
const suggestAllocLimit = 64 << 10

// FuzzDidYouMean asks for suggestions between arbitrary strings. Properties: a suggestion
// names one of the candidates, is deterministic, and costs a bounded amount of memory
// whatever the strings' lengths (the loader asks once per unknown name in a file).
func FuzzDidYouMean(f *testing.F) {
	f.Add("retryOnFial", "retryOnFail", "maxTries")
	f.Add("nodez", "nodes", "connections")
	f.Add("maxTry", "maxTries", "timeout")
	f.Add("x", "y", "")
	f.Add("Ünïcödé", "unicode", "Ünïcöde")
	f.Fuzz(func(t *testing.T, got, c1, c2 string) {
		// The least of three measures: the counter is the process's, and the fuzzer's own
		// goroutines allocate now and then.
		var s string
		least := uint64(1 << 63)
		for range 3 {
			before := allocatedBytes()
			s = engine.DidYouMean(got, []string{c1, c2})
			least = min(least, allocatedBytes()-before)
		}
		if least > suggestAllocLimit {
			t.Fatalf("suggesting among strings of %d, %d and %d bytes allocated %d KiB", len(got), len(c1), len(c2), least>>10)
		}
		if s != "" && s != fmt.Sprintf(" (did you mean %q?)", c1) && s != fmt.Sprintf(" (did you mean %q?)", c2) {
			t.Fatalf("suggestion %q names no candidate", s)
		}
		if again := engine.DidYouMean(got, []string{c1, c2}); again != s {
			t.Fatalf("suggestions differ: %q, %q", s, again)
		}
	})
}

// exprAllocLimit bounds what one template evaluation may allocate, in bytes. The engine allows
// a million list elements (a few tens of megabytes, built once or twice) and 64 MiB of text.
const exprAllocLimit = 256 << 20

// FuzzTemplate compiles arbitrary text as a parameter template and evaluates it. Properties:
// a compile error is an *ExprError with a one-line message and an offset inside the template,
// on a character boundary, that points where expr's own parser points; compiling is
// deterministic; evaluation returns, allocates within exprAllocLimit, and its value survives
// ToJSONValue and encoding/json, as every value written to an item or static data must.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"plain text", "{{ $json.n + 1 }}", "Bearer {{ $static.token }}", "={{ $json.name }}",
		"{{ $now.plus(1, 'hour').toISO() }}", "{{ map($input, .a) }}", "{{ {'a': [1, 2.5, nil]} }}",
		"{{ $json.missing.deeper ?? 'x' }}", "{{ 1 + }}", "{{ }}", "a {{ b", "{{ '}}' }}",
		"{{ $env.HOME }}", "{{ toJSON($json) }}", "{{ 1..10 }}", "{{ $vars.x = 1 }}",
	} {
		f.Add(s)
	}
	env := fuzzEnv()
	f.Fuzz(func(t *testing.T, src string) {
		var tmpl, again *engine.Template
		var err, errAgain error
		finishes(t, "CompileTemplate", func() {
			tmpl, err = engine.CompileTemplate(src)
			again, errAgain = engine.CompileTemplate(src)
		})
		if fmt.Sprint(err) != fmt.Sprint(errAgain) || (tmpl == nil) != (again == nil) {
			t.Fatalf("two compiles differ: %v / %v", err, errAgain)
		}
		if err != nil {
			checkExprError(t, src, err)
			return
		}
		if tmpl.Raw() != src {
			t.Fatalf("Raw() = %q", tmpl.Raw())
		}
		var v any
		var evalErr error
		before := allocatedBytes()
		finishes(t, "Eval", func() { v, evalErr = tmpl.Eval(env) })
		if n := allocatedBytes() - before; n > exprAllocLimit {
			t.Fatalf("evaluation allocated %d MiB", n>>20)
		}
		if evalErr != nil {
			if strings.TrimSpace(evalErr.Error()) == "" {
				t.Fatal("evaluation failed with an empty message")
			}
			return
		}
		if _, err := json.Marshal(engine.ToJSONValue(v)); err != nil {
			t.Fatalf("value %#v does not encode as JSON: %v", v, err)
		}
	})
}

// checkExprError asserts a compile error is positioned and worded like a compiler's: one
// line, at the offending character.
func checkExprError(t *testing.T, src string, err error) {
	t.Helper()
	var ee *engine.ExprError
	if !errors.As(err, &ee) {
		t.Fatalf("compile error %T is not an *ExprError: %v", err, err)
	}
	if strings.TrimSpace(ee.Msg) == "" || strings.ContainsAny(ee.Error(), "\n\r") {
		t.Fatalf("message empty or not one line: %q", ee.Error())
	}
	if strings.Contains(ee.Msg, "runtime error") || strings.Contains(ee.Msg, "goroutine") {
		t.Fatalf("the compiler panicked: %.300s", ee.Msg)
	}
	if ee.Offset < 0 || ee.Offset > len(src) || !onBoundary(src, ee.Offset) {
		t.Fatalf("offset %d outside %q or inside a character", ee.Offset, src)
	}
	// For a syntax error, expr's parser says where in the expression it is; the offset must
	// be that place in the template, so that the expression's text starts where it says.
	var fe *file.Error
	if _, perr := parser.Parse(ee.Source); ee.Msg != "unclosed {{" && ee.Msg != "empty expression" && errors.As(perr, &fe) {
		at := byteIndex(ee.Source, fe.From)
		start := ee.Offset - at
		if start < 0 || !strings.HasPrefix(src[start:], ee.Source) {
			t.Fatalf("offset %d does not point at %q's error (expr: rune %d, byte %d) in %q", ee.Offset, ee.Source, fe.From, at, src)
		}
	}
}

// onBoundary reports whether off is where a character of s (or s's end) starts; a byte that
// is not UTF-8 counts as a character of its own.
func onBoundary(s string, off int) bool {
	for i := range s {
		if i >= off {
			return i == off
		}
	}
	return off == len(s)
}

// byteIndex is the byte offset of rune r of s (len(s) past its end).
func byteIndex(s string, r int) int {
	for i := range s {
		if r == 0 {
			return i
		}
		r--
	}
	return len(s)
}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// allocatedBytes is the heap allocated by the process so far, without stopping the world.
func allocatedBytes() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

// fuzzEnv is a small environment with a value of every kind an expression may meet.
func fuzzEnv() *engine.Env {
	item := engine.Item{
		"name": "Ada", "n": int64(3), "f": 2.5, "ok": true, "nil": nil,
		"list": []any{int64(1), "two", map[string]any{"three": int64(3)}},
		"body": map[string]any{"token": "abc", "expires_in": int64(3600)},
		"ts":   "2026-11-27T09:29:00Z",
	}
	return &engine.Env{
		JSON:   item,
		Input:  []engine.Item{item, {"a": int64(2)}},
		Node:   map[string]any{"Fetch": map[string]any{"json": engine.Item{"token": "abc"}}},
		Static: map[string]any{"token": "T", "count": int64(7)},
		Vars:   map[string]any{},
		Now:    time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC),
		OSEnv:  map[string]any{"HOME": "/home/flowd"},
		Flow:   map[string]any{"id": "f"},
		Run:    map[string]any{"id": "r"},
	}
}
