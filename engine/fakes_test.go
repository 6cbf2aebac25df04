package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
)

// testRegistry holds fake node types for engine tests.
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	r := NewRegistry()
	pass := NodeFunc(func(_ context.Context, in *Input, out *Output) error {
		out.Emit(0, in.Items...)
		return nil
	})
	types := []*NodeType{
		{Name: "trigger", Trigger: true, New: func(*NodeConfig) (Node, error) { return pass, nil }},
		{Name: "pass", Aliases: []string{"test.pass"}, New: func(*NodeConfig) (Node, error) { return pass, nil }},
		{
			Name:           "split",
			Outputs:        []string{"true", "false"},
			ContinueOutput: 1,
			Params:         []ParamSpec{{Name: "cond", Kind: KindTemplate, Required: true}},
			New: func(cfg *NodeConfig) (Node, error) {
				cond := cfg.Params.Template("cond")
				return NodeFunc(func(ctx context.Context, in *Input, out *Output) error {
					for i, it := range in.Items {
						env, err := in.Env(ctx, i)
						if err != nil {
							return err
						}
						v, err := cond.Eval(env)
						if err != nil {
							out.FailItem(i, it, err)
							continue
						}
						if v == true {
							out.Emit(0, it)
						} else {
							out.Emit(1, it)
						}
					}
					return nil
				}), nil
			},
		},
		{
			Name:   "emit",
			Params: []ParamSpec{{Name: "items", Kind: KindList, Required: true}},
			New: func(cfg *NodeConfig) (Node, error) {
				vt := cfg.Params.ValueTemplate("items")
				return NodeFunc(func(ctx context.Context, in *Input, out *Output) error {
					env, err := in.Env(ctx, -1)
					if err != nil {
						return err
					}
					v, err := vt.Eval(env)
					if err != nil {
						return err
					}
					for _, e := range v.([]any) {
						out.Emit(0, e.(map[string]any))
					}
					return nil
				}), nil
			},
		},
		{
			Name:   "fail",
			Params: []ParamSpec{{Name: "times", Kind: KindNumber, Default: int64(1 << 30)}},
			New: func(cfg *NodeConfig) (Node, error) {
				times := int64(cfg.Params.Int("times"))
				var calls atomic.Int64
				return NodeFunc(func(_ context.Context, in *Input, out *Output) error {
					if n := calls.Add(1); n <= times {
						return fmt.Errorf("boom %d", n)
					}
					out.Emit(0, in.Items...)
					return nil
				}), nil
			},
		},
		{
			Name: "failBad",
			New: func(*NodeConfig) (Node, error) {
				return NodeFunc(func(_ context.Context, in *Input, out *Output) error {
					for i, it := range in.Items {
						if it["bad"] == true {
							out.FailItem(i, it, errors.New("bad item"))
							continue
						}
						out.Emit(0, it)
					}
					return nil
				}), nil
			},
		},
		{
			Name: "set",
			Params: []ParamSpec{
				{Name: "key", Kind: KindString, Required: true},
				{Name: "value", Kind: KindTemplate, Required: true},
			},
			New: func(cfg *NodeConfig) (Node, error) {
				key, val := cfg.Params.String("key"), cfg.Params.Template("value")
				return NodeFunc(func(ctx context.Context, in *Input, out *Output) error {
					env, err := in.Env(ctx, -1)
					if err != nil {
						return err
					}
					v, err := val.Eval(env)
					if err != nil {
						return err
					}
					st, err := in.Static(ctx)
					if err != nil {
						return err
					}
					st.Set(key, v)
					out.Emit(0, in.Items...)
					return nil
				}), nil
			},
		},
		{
			Name: "block",
			New: func(*NodeConfig) (Node, error) {
				return NodeFunc(func(ctx context.Context, in *Input, out *Output) error {
					if ch, ok := ctx.Value(startedKey{}).(chan struct{}); ok {
						close(ch)
					}
					<-ctx.Done()
					return ctx.Err()
				}), nil
			},
		},
		{
			// arrive counts its executions on the barrier in ctx; wait blocks until the
			// barrier is full, then counts its own calls.
			Name: "arrive",
			New: func(*NodeConfig) (Node, error) {
				return NodeFunc(func(ctx context.Context, in *Input, out *Output) error {
					if b, ok := ctx.Value(barrierKey{}).(*barrier); ok {
						env, err := in.Env(ctx, -1)
						if err != nil {
							return err
						}
						b.arrive(env.Run["id"].(string))
					}
					out.Emit(0, in.Items...)
					return nil
				}), nil
			},
		},
		{
			Name: "wait",
			New: func(*NodeConfig) (Node, error) {
				return NodeFunc(func(ctx context.Context, in *Input, out *Output) error {
					if b, ok := ctx.Value(barrierKey{}).(*barrier); ok {
						select {
						case <-b.full:
						case <-ctx.Done():
							return ctx.Err()
						}
						b.calls.Add(1)
					}
					out.Emit(0, in.Items...)
					return nil
				}), nil
			},
		},
		{
			Name: "panic",
			New: func(*NodeConfig) (Node, error) {
				return NodeFunc(func(context.Context, *Input, *Output) error { panic("kaboom") }), nil
			},
		},
	}
	for _, nt := range types {
		if err := r.Register(nt); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// startedKey carries a channel the block node closes when it starts.
type startedKey struct{}

// barrierKey carries a *barrier for the arrive and wait nodes.
type barrierKey struct{}

// barrier is full once n different runs have arrived.
type barrier struct {
	n     int
	mu    sync.Mutex
	runs  map[string]bool
	full  chan struct{}
	calls atomic.Int64
}

func newBarrier(n int) *barrier {
	return &barrier{n: n, runs: map[string]bool{}, full: make(chan struct{})}
}

func (b *barrier) arrive(run string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.runs[run] {
		b.runs[run] = true
		if len(b.runs) == b.n {
			close(b.full)
		}
	}
}

func mustLoad(t testing.TB, src string) *Flow {
	t.Helper()
	f, probs := (&Loader{Registry: testRegistry(t)}).Load("test.json", []byte(src))
	if f == nil {
		t.Fatalf("load: %v", probs)
	}
	return f
}

// quiet discards executor logs in tests.
var quiet = slog.New(slog.DiscardHandler)
