package redact

import (
	"context"
	"encoding"
	"log/slog"
)

// NewHandler returns a slog.Handler that redacts every record before next sees it: the
// message and string values through r.String, attributes under sensitive keys (and whole
// groups under one) as Mask, errors by their text, and any other value through r.Value.
// Values are resolved (slog.LogValuer) first, so nothing reaches next unredacted.
func NewHandler(next slog.Handler, r *Redactor) slog.Handler {
	return &handler{next: next, r: r}
}

type handler struct {
	next slog.Handler
	r    *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.Message(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{next: h.next.WithAttrs(red), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), r: h.r}
}

// attr redacts one attribute.
func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if a.Key != "" && h.r.Keys().Sensitive(a.Key) && v.Kind() != slog.KindGroup && hidesLogValue(v) {
		return slog.String(a.Key, Mask)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.Message(v.String()))
	case slog.KindGroup:
		group := v.Group()
		red := make([]any, len(group))
		hideAll := a.Key != "" && h.r.Keys().Sensitive(a.Key)
		for i, g := range group {
			if hideAll {
				red[i] = slog.String(g.Key, Mask)
				continue
			}
			red[i] = h.attr(g)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: h.any(v.Any())}
	}
	return slog.Attr{Key: a.Key, Value: v} // numbers, bools, times, durations
}

// any redacts a value of kind Any: errors and text marshalers by their text, anything else
// as Value does.
func (h *handler) any(x any) slog.Value {
	switch t := x.(type) {
	case nil:
		return slog.AnyValue(nil)
	case error:
		return slog.StringValue(h.r.Message(t.Error()))
	case encoding.TextMarshaler:
		b, err := t.MarshalText()
		if err != nil {
			return slog.StringValue(Mask)
		}
		return slog.StringValue(h.r.String(string(b)))
	case []byte:
		return slog.StringValue(h.r.String(string(t)))
	}
	return slog.AnyValue(h.r.Value(x))
}

// hidesLogValue is HidesValue for a resolved log value.
func hidesLogValue(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindString:
		return v.String() != ""
	case slog.KindAny:
		return HidesValue(v.Any())
	}
	return true
}
