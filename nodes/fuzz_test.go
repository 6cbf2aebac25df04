package nodes

// Fuzz targets for the nodes' own parsers: schedules (cron, intervals, time zones), and the
// HTTP Request node's turning of item values into a request and of responses into items. `make fuzz` runs each for a few
// seconds; testdata/fuzz/<Target>/ holds the committed seeds and every regression found.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
)

// scheduleHorizon bounds how far ahead a cron schedule's next fire may be: robfig/cron gives
// up (and answers "never", the zero time) after five years of searching.
const scheduleHorizon = 6 * 366 * 24 * time.Hour

// FuzzSchedule builds scheduleTrigger nodes from arbitrary cron specs or intervals and time
// zones, through the loader as a flow file does, and asks for fire times from arbitrary
// instants. Properties: loading is deterministic; a schedule that loads fires strictly after
// the time it is asked about, within its interval (or the cron horizon) or never, and each
// later fire is after the one before.
func FuzzSchedule(f *testing.F) {
	for _, s := range []struct {
		spec     string
		interval bool
		tz       string
	}{
		{"*/15 * * * *", false, ""}, {"0 9 * * 1-5", false, "America/New_York"},
		{"*/5 * * * * *", false, "UTC"}, {"@hourly", false, ""}, {"@every 1m30s", false, ""},
		{"0 30 2 * * *", false, "Europe/Berlin"}, {"0 0 29 2 *", false, ""}, {"0 0 31 2 *", false, ""},
		{"30s", true, ""}, {"1h", true, "Asia/Kolkata"}, {"2562047h", true, ""}, {"500ms", true, ""},
		{"@every -1s", false, ""}, {"CRON_TZ=UTC 0 * * * *", false, ""}, {"0 0 * * 7", false, "Australia/Lord_Howe"},
	} {
		f.Add(s.spec, s.interval, s.tz, int64(1795000000), int64(123456789))
	}
	loader := &engine.Loader{Registry: NewRegistry()}
	f.Fuzz(func(t *testing.T, spec string, interval bool, tz string, unix, nanos int64) {
		params := map[string]any{"cron": spec}
		if interval {
			params = map[string]any{"interval": spec}
		}
		if tz != "" {
			params["timezone"] = tz
		}
		src, err := json.Marshal(params) // bytes that are not UTF-8 become U+FFFD
		if err != nil {
			t.Fatal(err)
		}
		n, err := loader.LoadNode("scheduleTrigger", string(src))
		n2, err2 := loader.LoadNode("scheduleTrigger", string(src))
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("two loads differ: %v / %v", err, err2)
		}
		if err != nil {
			return
		}
		s, s2 := n.Impl.(*Schedule), n2.Impl.(*Schedule)
		// From 1970 to about 2400, at any nanosecond.
		at := time.Unix(unix%(430*365*24*3600), nanos%1e9)
		if at.Before(time.Unix(0, 0)) {
			at = at.AddDate(430, 0, 0)
		}
		prev := at
		for i := range 3 {
			next := s.Next(prev)
			if again := s2.Next(prev); !again.Equal(next) {
				t.Fatalf("Next(%v) = %v, then %v", prev, next, again)
			}
			if next.IsZero() {
				if s.Interval > 0 {
					t.Fatalf("interval %v never fires after %v", s.Interval, prev)
				}
				return // never: a date that does not come, such as 31 February
			}
			if !next.After(prev) {
				t.Fatalf("fire %d: Next(%v) = %v, not after it (%q in %v)", i, prev, next, s.Cron, s.Location)
			}
			limit := scheduleHorizon
			if s.Interval > 0 {
				limit = s.Interval
			}
			// "@every D" is cron's own interval: D apart, however long D is.
			if every, ok := strings.CutPrefix(strings.TrimSpace(s.Cron), "@every"); ok {
				if d, err := time.ParseDuration(strings.TrimSpace(every)); err == nil && d > limit {
					limit = d
				}
			}
			if next.Sub(prev) > limit {
				t.Fatalf("fire %d: Next(%v) = %v, more than %v later", i, prev, next, limit)
			}
			prev = next
		}
	})
}

// FuzzHTTPResponse turns arbitrary responses (status, Content-Type, body) into an HTTP
// Request node's items, with automatic format detection and with fullResponse. Properties: a
// failure is one line that names the request, without bare Go-internal text such as
// "unexpected EOF"; a status outside 2xx fails; items encode as JSON, and a JSON body's value
// survives being encoded and decoded again.
func FuzzHTTPResponse(f *testing.F) {
	for _, s := range []struct {
		status   int
		ct, body string
	}{
		{200, "application/json", `{"access_token": "abc", "expires_in": 3600}`},
		{200, "application/json; charset=utf-8", `[{"a": 1}, 2, "x", null]`},
		{200, "application/vnd.api+json", `{"a": 1} trailing`},
		{200, "text/json", "\ufeff{\"a\": 12345678901234567890}"},
		{200, "text/plain", "hello\xff"},
		{200, "", ""},
		{204, "application/json", ""},
		{500, "text/html", "<html>\n  <body>oops</body>\n</html>"},
		{429, "application/json", `{"error": "slow down"}`},
		{200, "application/json", `{"a": tru}`},
	} {
		f.Add(s.status, s.ct, []byte(s.body), false)
	}
	loader := &engine.Loader{Registry: NewRegistry()}
	build := func(full bool) *httpRequest {
		n, err := loader.LoadNode("httpRequest", fmt.Sprintf(`{"url": "https://api.example.com/token", "response": {"fullResponse": %v}}`, full))
		if err != nil {
			f.Fatal(err)
		}
		return n.Impl.(*httpRequest)
	}
	plain, full := build(false), build(true)
	c := &httpCall{method: http.MethodGet, desc: "GET https://api.example.com/token"}
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte, fullResponse bool) {
		h := plain
		if fullResponse {
			h = full
		}
		if status < 100 || status > 599 {
			status = 100 + abs(status%500)
		}
		res := &httpResult{status: status, statusText: http.StatusText(status), header: http.Header{"Content-Type": {contentType}}, body: body}
		items, err := h.items(c, res)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, c.desc) || strings.ContainsAny(msg, "\n\r") || !utf8.ValidString(msg) {
				t.Fatalf("error does not name the request in one line of text: %q", msg)
			}
			for _, internal := range []string{"EOF", "unexpected EOF"} {
				if strings.Contains(msg, ": "+internal+":") || strings.HasSuffix(msg, ": "+internal) {
					t.Fatalf("error holds Go's bare %q: %q", internal, msg)
				}
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("HTTP %d did not fail", status)
		}
		data, err := json.Marshal(items)
		if err != nil {
			t.Fatalf("items %#v do not encode: %v", items, err)
		}
		var again []engine.Item
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&again); err != nil {
			t.Fatal(err)
		}
		engine.PlainNumbers(again)
		if !reflect.DeepEqual(items, again) {
			t.Fatalf("items do not round-trip:\n%#v\n%s\n%#v", items, data, again)
		}
	})
}

func abs(n int) int { return max(n, -n) }

func describeCall(c *httpCall) string {
	if c == nil {
		return "<nil>"
	}
	return c.desc
}

// FuzzHTTPBuild turns arbitrary item values into an HTTP Request node's request: the URL,
// a query parameter, a header and basic-auth credentials all come from the item. Properties:
// a request that builds is one Go's client sends (absolute http(s) URL, valid header names
// and values) and carries the values as given; neither the request's description nor any
// error depends on the URL's password, query or fragment, which may hold credentials: they
// are the same when those are replaced.
func FuzzHTTPBuild(f *testing.F) {
	for _, s := range [][5]string{
		{"https://api.example.com/v1/items?page=2", "q=1&x", "Bearer abc", "user", "hunter22"},
		{"http://user:s3cr3tpw@127.0.0.1:8080/a b#frag", "ü", "a\r\nX-Injected: 1", "u", "p"},
		{"ftp://example.com/", "", "", "", ""},
		{"https://[::1]:99999/", "%zz", "\x7f", "a:b", ""},
		{"  HTTPS://Example.COM?token=topsecret#access_token=abcd", "", "v", "", ""},
		{"http://%41:%42@host/", "", "", "", ""},
		{"//host/path", "", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	n, err := (&engine.Loader{Registry: NewRegistry()}).LoadNode("httpRequest", `{
		"url": "{{ $json.url }}", "query": {"q": "{{ $json.q }}"}, "headers": {"X-Fuzz": "{{ $json.h }}"},
		"auth": {"type": "basic", "user": "{{ $json.user }}", "password": "{{ $json.password }}"}}`)
	if err != nil {
		f.Fatal(err)
	}
	h := n.Impl.(*httpRequest)
	offline := *h
	offline.client = &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return nil, errOffline },
	}}
	f.Fuzz(func(t *testing.T, rawURL, q, header, user, password string) {
		env := &engine.Env{JSON: engine.Item{"url": rawURL, "q": q, "h": header, "user": user, "password": password}}
		c, err := h.build(env)
		// What is shown of the request must not change when only its secrets do.
		other := withOtherSecrets(rawURL)
		env.JSON["url"] = other
		c2, err2 := h.build(env)
		if fmt.Sprint(err) != fmt.Sprint(err2) || err == nil && c.desc != c2.desc {
			t.Fatalf("what is shown depends on the URL's password, query or fragment:\n%q: %v %v\n%q: %v %v", rawURL, describeCall(c), err, other, describeCall(c2), err2)
		}
		if err != nil {
			return
		}
		if c.url.Scheme != "http" && c.url.Scheme != "https" || c.url.Host == "" {
			t.Fatalf("built URL %q is not absolute http(s)", c.url)
		}
		// Send it with a client whose every dial fails: Go checks the request before dialling.
		_, err = offline.send(context.Background(), c)
		if !errors.Is(err, errOffline) {
			t.Fatalf("Go's client refuses the request to %q: %v", c.url, err)
		}
		if _, err2 = offline.send(context.Background(), c2); err.Error() != err2.Error() {
			t.Fatalf("send errors depend on the URL's secrets: %v / %v", err, err2)
		}
		if !slices.Contains(c.url.Query()["q"], q) {
			t.Fatalf("query q=%q lost: %q", q, c.url.RawQuery)
		}
		if got := c.header.Get("X-Fuzz"); got != header {
			t.Fatalf("header X-Fuzz = %q, want %q", got, header)
		}
		auth := strings.TrimPrefix(c.header.Get("Authorization"), "Basic ")
		if b, err := base64.StdEncoding.DecodeString(auth); err != nil || string(b) != user+":"+password {
			t.Fatalf("Authorization %q does not carry %q:%q", auth, user, password)
		}
	})
}

// errOffline is what FuzzHTTPBuild's client answers every request with that Go would send.
var errOffline = errors.New("offline")

// withOtherSecrets returns the URL with every letter and digit of its password, query and
// fragment replaced by another of the same class (hex digits stay hex digits, so percent
// escapes keep their meaning or their fault): the same URL in shape, with other secrets.
func withOtherSecrets(raw string) string {
	b := []byte(raw)
	end := len(b)
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		rotate(b[i+1:])
		end = i
	}
	if i := strings.IndexByte(raw[:end], '?'); i >= 0 {
		rotate(b[i+1 : end])
		end = i
	}
	if i := strings.Index(raw[:end], "//"); i >= 0 && urlScheme.MatchString(strings.TrimSpace(raw[:i])) {
		auth := raw[i+2 : end]
		if j := strings.IndexByte(auth, '/'); j >= 0 {
			auth = auth[:j]
		}
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			if c := strings.IndexByte(auth[:at], ':'); c >= 0 {
				rotate(b[i+2+c+1 : i+2+at])
			}
		}
	}
	return string(b)
}

// urlScheme matches what may stand before an authority's "//": nothing, or a scheme.
var urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*:)?$`)

func rotate(b []byte) {
	for i, c := range b {
		for _, class := range []string{"0123456789", "abcdef", "ABCDEF", "ghijklmnopqrstuvwxyz", "GHIJKLMNOPQRSTUVWXYZ"} {
			if k := strings.IndexByte(class, c); k >= 0 {
				b[i] = class[(k+1)%len(class)]
				break
			}
		}
	}
}
