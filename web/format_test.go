package web

import (
	"math"
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 µs"},
		{250 * time.Nanosecond, "250 ns"},
		{time.Microsecond, "1 µs"},
		{850 * time.Microsecond, "850 µs"},
		{999*time.Microsecond + 400*time.Nanosecond, "999 µs"},
		{999*time.Microsecond + 600*time.Nanosecond, "1.00 ms"}, // rounds up into ms
		{1250 * time.Microsecond, "1.25 ms"},
		{12345 * time.Microsecond, "12.3 ms"},
		{123456 * time.Microsecond, "123 ms"},
		{999960 * time.Microsecond, "1.00 s"}, // not "1000 ms"
		{1420 * time.Millisecond, "1.42 s"},
		{12340 * time.Millisecond, "12.3 s"},
		{59960 * time.Millisecond, "1m 00s"}, // not "60.0 s"
		{2*time.Minute + 5*time.Second, "2m 05s"},
		{2*time.Minute + 5*time.Second + 600*time.Millisecond, "2m 06s"},
		{59*time.Minute + 59*time.Second + 600*time.Millisecond, "1h 00m"}, // not "60m 00s"
		{3*time.Hour + 10*time.Minute, "3h 10m"},
		{23*time.Hour + 59*time.Minute + 40*time.Second, "1d 00h"},
		{50 * time.Hour, "2d 02h"},
		{-1420 * time.Millisecond, "-1.42 s"},
		{math.MinInt64, "-106751d 23h"}, // Round saturates: no overflow
		{math.MaxInt64, "106751d 23h"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := formatDuration(tc.d); got != tc.want {
				t.Errorf("formatDuration(%d) = %q, want %q", int64(tc.d), got, tc.want)
			}
		})
	}
}

func TestFormatMicros(t *testing.T) {
	tests := []struct {
		us   int64
		want string
	}{
		{0, "0 µs"},
		{850, "850 µs"},
		{12_300, "12.3 ms"},
		{125_000_000, "2m 05s"},
		{-5, "-5 µs"},
		{math.MaxInt64, formatDuration(math.MaxInt64 / 1000 * 1000)}, // clamped, not overflowed
	}
	for _, tc := range tests {
		if got := formatMicros(tc.us); got != tc.want {
			t.Errorf("formatMicros(%d) = %q, want %q", tc.us, got, tc.want)
		}
	}
}

func TestRelativeTime(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{0, "just now"},
		{4 * time.Second, "just now"},
		{-4 * time.Second, "just now"},
		{12*time.Second + 900*time.Millisecond, "12 s ago"}, // rounded down
		{59 * time.Second, "59 s ago"},
		{5*time.Minute + 59*time.Second, "5 min ago"},
		{3 * time.Hour, "3 h ago"},
		{23*time.Hour + 59*time.Minute, "23 h ago"},
		{25 * time.Hour, "1 day ago"},
		{2 * 24 * time.Hour, "2 days ago"},
		{59 * 24 * time.Hour, "59 days ago"},
		{90 * 24 * time.Hour, "3 months ago"},
		{800 * 24 * time.Hour, "2 years ago"},
		{-5 * time.Minute, "in 5 min"},
		{-30 * time.Second, "in 30 s"},
		{-3 * 24 * time.Hour, "in 3 days"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := relativeTime(now.Add(-tc.ago), now); got != tc.want {
				t.Errorf("relativeTime(now - %v) = %q, want %q", tc.ago, got, tc.want)
			}
		})
	}
	if got := relativeTime(time.Time{}, now); got != "never" {
		t.Errorf("zero time: %q, want never", got)
	}
	// Time zones do not matter, only the instant.
	if got := relativeTime(now.Add(-time.Hour).In(time.FixedZone("X", 5*3600)), now); got != "1 h ago" {
		t.Errorf("other zone: %q", got)
	}
}
