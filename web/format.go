package web

import (
	"fmt"
	"math"
	"time"
)

// Human formatting shared by every page: durations in run tables, node timings and the
// waterfall's axis, and "5 min ago" next to timestamps.

// formatDuration writes d with about three significant digits in the largest unit that keeps
// it readable: "250 ns", "850 µs", "1.25 ms", "12.3 ms", "1.42 s", "2m 05s", "3h 10m",
// "2d 04h". A negative d gets a leading "-".
func formatDuration(d time.Duration) string {
	if d < 0 {
		if d == math.MinInt64 {
			d++ // -MinInt64 overflows; a nanosecond does not show at this size
		}
		return "-" + formatDuration(-d)
	}
	// Round first, so 999.96 ms reads "1.00 s" and not "1000 ms".
	d = roundForDisplay(d)
	switch {
	case d == 0:
		return "0 µs"
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return threeDigits(float64(d)/float64(time.Millisecond)) + " ms"
	case d < time.Minute:
		return threeDigits(d.Seconds()) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < day:
		return fmt.Sprintf("%dh %02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd %02dh", int64(d/day), int64(d%day/time.Hour))
	}
}

const day = 24 * time.Hour

// displayUnit is what formatDuration shows of d: three significant digits up to a minute,
// then whole seconds, minutes or hours.
func displayUnit(d time.Duration) time.Duration {
	switch {
	case d < time.Microsecond:
		return time.Nanosecond
	case d < time.Millisecond:
		return time.Microsecond
	case d < 10*time.Millisecond:
		return 10 * time.Microsecond
	case d < 100*time.Millisecond:
		return 100 * time.Microsecond
	case d < time.Second:
		return time.Millisecond
	case d < 10*time.Second:
		return 10 * time.Millisecond
	case d < time.Minute:
		return 100 * time.Millisecond
	case d < time.Hour:
		return time.Second
	case d < day:
		return time.Minute
	default:
		return time.Hour
	}
}

// roundForDisplay rounds d to its display unit; when rounding carries it into a coarser range
// (59m59.6s becomes 1h), it rounds again there.
func roundForDisplay(d time.Duration) time.Duration {
	for {
		u := displayUnit(d)
		r := d.Round(u)
		if displayUnit(r) == u {
			return r
		}
		d = r
	}
}

// threeDigits formats v (1 <= v < 1000) with three significant digits.
func threeDigits(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// formatMicros formats a duration given in microseconds, as NodeRun.DurationMicros is.
func formatMicros(us int64) string {
	const limit = math.MaxInt64 / int64(time.Microsecond)
	us = max(min(us, limit), -limit)
	return formatDuration(time.Duration(us) * time.Microsecond)
}

// relativeTime says how long before now t was, rounded down to its largest unit: "just now"
// (under 5 s either way), "12 s ago", "5 min ago", "3 h ago", "1 day ago", "2 days ago"; after
// 60 days in months, after two years in years. A t after now reads "in 5 min". A zero t (a
// time never set) reads "never".
func relativeTime(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	if d < 5*time.Second {
		return "just now"
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < day:
		s = fmt.Sprintf("%d h", int(d/time.Hour))
	case d < 60*day:
		s = unitCount(int64(d/day), "day")
	case d < 730*day:
		s = unitCount(int64(d/(30*day)), "month")
	default:
		s = unitCount(int64(d/(365*day)), "year")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func unitCount(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
