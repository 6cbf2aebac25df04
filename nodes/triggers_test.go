package nodes

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWebhookParams(t *testing.T) {
	n := loadNode(t, "webhook", `{"path": "/orders/:id/items/", "httpMethod": ["post", "GET", "POST"], "responseMode": "lastNode", "responseData": "allEntries", "responseCode": 201, "responseHeaders": {"X-Flow": "orders"}}`)
	w := n.Impl.(*Webhook)
	if w.Path != "orders/:id/items" || !slices.Equal(w.Methods, []string{"GET", "POST"}) {
		t.Errorf("path %q methods %v", w.Path, w.Methods)
	}
	if w.ResponseMode != "lastNode" || w.ResponseData != "allEntries" || w.ResponseCode != 201 || w.ResponseHeaders["X-Flow"] != "orders" {
		t.Errorf("response settings %+v", w)
	}
	if !slices.Equal(w.Params(), []string{"id"}) {
		t.Errorf("params %v", w.Params())
	}
	d := loadNode(t, "n8n-nodes-base.webhook", `{"path": "x"}`).Impl.(*Webhook)
	if !slices.Equal(d.Methods, []string{"GET"}) || d.ResponseMode != "onReceived" || d.ResponseCode != 200 {
		t.Errorf("defaults %+v", d)
	}
}

func TestWebhookLoadErrors(t *testing.T) {
	tests := []struct{ name, params, want string }{
		{"no path", `{}`, "parameters.path: required"},
		{"empty path", `{"path": "/"}`, "parameters.path: must not be empty"},
		{"bad segment", `{"path": "a/../b"}`, `parameters.path: segment ".."`},
		{"bad chars", `{"path": "a b"}`, `parameters.path: segment "a b"`},
		{"repeated param", `{"path": ":id/:id"}`, "parameters.path: parameter :id appears twice"},
		{"bad method", `{"path": "a", "httpMethod": "FETCH"}`, `parameters.httpMethod: "FETCH" is not one of GET, POST, PUT, PATCH, DELETE, HEAD`},
		{"bad mode", `{"path": "a", "responseMode": "lastnode"}`, `parameters.responseMode: "lastnode" is not one of onReceived, lastNode (did you mean "lastNode"?)`},
		{"bad code", `{"path": "a", "responseCode": 99}`, "parameters.responseCode: want an HTTP status from 200 to 599, got 99"},
		{"informational code", `{"path": "a", "responseCode": 101}`, "parameters.responseCode: want an HTTP status from 200 to 599, got 101"},
		{"unknown", `{"path": "a", "method": "POST"}`, "parameters.method: unknown parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loadNodeErr(t, "webhook", tt.params); !strings.Contains(got, tt.want) {
				t.Fatalf("error:\n%s\nwant %q", got, tt.want)
			}
		})
	}
}

func TestScheduleNext(t *testing.T) {
	utc := time.UTC
	base := time.Date(2026, 11, 27, 10, 0, 7, 0, utc)
	tests := []struct {
		name, params string
		want         time.Time
	}{
		{"interval", `{"interval": "30s"}`, time.Date(2026, 11, 27, 10, 0, 30, 0, utc)},
		{"interval ms", `{"interval": 60000}`, time.Date(2026, 11, 27, 10, 1, 0, 0, utc)},
		{"five fields", `{"cron": "*/15 * * * *"}`, time.Date(2026, 11, 27, 10, 15, 0, 0, utc)},
		{"with seconds", `{"cron": "*/5 * * * * *"}`, time.Date(2026, 11, 27, 10, 0, 10, 0, utc)},
		{"descriptor", `{"cron": "@hourly"}`, time.Date(2026, 11, 27, 11, 0, 0, 0, utc)},
		{"every", `{"cron": "@every 1m"}`, time.Date(2026, 11, 27, 10, 1, 7, 0, utc)},
		{"time zone", `{"cron": "0 9 * * *", "timezone": "America/New_York"}`, time.Date(2026, 11, 27, 14, 0, 0, 0, utc)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadNode(t, "scheduleTrigger", tt.params).Impl.(*Schedule)
			if got := s.Next(base); !got.Equal(tt.want) {
				t.Fatalf("next = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScheduleLoadErrors(t *testing.T) {
	tests := []struct{ name, params, want string }{
		{"neither", `{}`, "give cron or interval"},
		{"both", `{"cron": "* * * * *", "interval": "1m"}`, "parameters.interval: give cron or interval, not both"},
		{"bad cron", `{"cron": "61 * * * *"}`, `parameters.cron: invalid cron expression "61 * * * *"`},
		{"too many fields", `{"cron": "* * * * * * *"}`, "parameters.cron: invalid cron expression"},
		{"short interval", `{"interval": "500ms"}`, "parameters.interval: must be at least 1s"},
		{"bad interval", `{"interval": "often"}`, `parameters.interval: want a duration such as "30s"`},
		{"bad zone", `{"cron": "* * * * *", "timezone": "Moon/Crater"}`, `parameters.timezone: unknown time zone "Moon/Crater"`},
		{"zone in spec", `{"cron": "CRON_TZ=UTC * * * * *"}`, "set the time zone with the timezone parameter"},
		{"catch up", `{"interval": "1m", "catchUp": "some"}`, `parameters.catchUp: "some" is not one of none, last, all`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loadNodeErr(t, "scheduleTrigger", tt.params); !strings.Contains(got, tt.want) {
				t.Fatalf("error:\n%s\nwant %q", got, tt.want)
			}
		})
	}
}

func TestScheduleItem(t *testing.T) {
	s := loadNode(t, "scheduleTrigger", `{"interval": "1m", "timezone": "Europe/Berlin"}`).Impl.(*Schedule)
	it := s.Item(time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC))
	if it["timestamp"] != "2026-11-27T10:30:00.000+01:00" || it["hour"] != int64(10) || it["timezone"] != "Europe/Berlin" || it["dayOfWeek"] != "Friday" {
		t.Fatalf("item = %v", it)
	}
}
