package nodes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/flowd/flowd/engine"
)

// Schedule is a built schedule trigger. flowd serve fires it at each time Next gives.
type Schedule struct {
	// Cron is the cron expression as written ("" for an interval schedule).
	Cron string
	// Interval is the fixed period of an interval schedule (0 for cron).
	Interval time.Duration
	// Location is the time zone cron fields are read in.
	Location *time.Location
	// CatchUp is what a restart does about ticks missed while flowd was down: "none" (the
	// default), "last" (one run for all of them) or "all" (one run each, at most MaxCatchUp).
	CatchUp    string
	MaxCatchUp int
	sched      cron.Schedule
}

// cronParser accepts five fields, or six with seconds first, and descriptors such as @hourly
// and @every 90s.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Next returns the first fire time after t.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.Interval > 0 {
		// Interval ticks fall on multiples of the interval (counted from Go's zero time, so
		// an interval that divides a day starts at midnight UTC): a restart keeps the rhythm.
		return t.Truncate(s.Interval).Add(s.Interval)
	}
	return s.sched.Next(t.In(s.Location))
}

// Schedule returns s as a robfig/cron schedule.
func (s *Schedule) Schedule() cron.Schedule { return scheduleFunc(s.Next) }

type scheduleFunc func(time.Time) time.Time

func (f scheduleFunc) Next(t time.Time) time.Time { return f(t) }

// Item is the trigger item for a fire at t, in the schedule's zone.
func (s *Schedule) Item(t time.Time) engine.Item {
	t = t.In(s.Location)
	return engine.Item{
		"timestamp": engine.FormatTime(t),
		"date":      t.Format("2006-01-02"),
		"time":      t.Format("15:04:05"),
		"dayOfWeek": t.Weekday().String(),
		"year":      int64(t.Year()),
		"month":     int64(t.Month()),
		"day":       int64(t.Day()),
		"hour":      int64(t.Hour()),
		"minute":    int64(t.Minute()),
		"second":    int64(t.Second()),
		"timezone":  s.Location.String(),
	}
}

// Run emits the trigger item.
func (s *Schedule) Run(ctx context.Context, in *engine.Input, out *engine.Output) error {
	return passThrough(ctx, in, out)
}

func scheduleType() *engine.NodeType {
	return &engine.NodeType{
		Name:    "scheduleTrigger",
		Doc:     "Starts a run on a cron schedule or at a fixed interval.",
		Trigger: true,
		Params: []engine.ParamSpec{
			{Name: "cron", Kind: engine.KindString, Doc: `Cron expression: 5 fields, or 6 with seconds first; @hourly, @daily, @every 1m30s.`},
			{Name: "interval", Kind: engine.KindDuration, Doc: `Fixed period such as "30s" or "5m" (at least 1s); instead of cron.`},
			{Name: "timezone", Kind: engine.KindString, Doc: "IANA time zone for cron fields; default the flow's."},
			{Name: "catchUp", Kind: engine.KindString, Default: "none", Enum: []string{"none", "last", "all"}, Doc: "After downtime: none, one run for all missed ticks (last), or one per missed tick (all)."},
			{Name: "maxCatchUp", Kind: engine.KindNumber, Default: int64(100), Doc: "With catchUp all: the most missed ticks run."},
		},
		New: newSchedule,
	}
}

func newSchedule(cfg *engine.NodeConfig) (engine.Node, error) {
	p := cfg.Params
	s := &Schedule{
		Cron:       strings.TrimSpace(p.String("cron")),
		Interval:   p.Duration("interval"),
		Location:   cfg.Settings.Location,
		CatchUp:    p.String("catchUp"),
		MaxCatchUp: p.Int("maxCatchUp"),
	}
	if tz := p.String("timezone"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			p.Errorf("timezone", "unknown time zone %q", tz)
		} else {
			s.Location = loc
		}
	}
	if s.Location == nil {
		s.Location = time.Local
	}
	switch {
	case p.Has("cron") && p.Has("interval"):
		p.Errorf("interval", "give cron or interval, not both")
	case p.Has("cron"):
		if strings.HasPrefix(s.Cron, "TZ=") || strings.HasPrefix(s.Cron, "CRON_TZ=") {
			p.Errorf("cron", "set the time zone with the timezone parameter, not in the expression")
			break
		}
		sched, err := cronParser.Parse(s.Cron)
		if err != nil {
			p.Errorf("cron", "invalid cron expression %q: %v", s.Cron, err)
			break
		}
		if spec, ok := sched.(*cron.SpecSchedule); ok {
			spec.Location = s.Location
		}
		s.sched = sched
	case p.Has("interval"):
		if s.Interval < time.Second {
			p.Errorf("interval", "must be at least 1s, got %s", s.Interval)
		}
	default:
		return nil, fmt.Errorf("parameters: give cron or interval")
	}
	if s.MaxCatchUp < 1 {
		p.Errorf("maxCatchUp", "must be at least 1")
	}
	return s, nil
}
