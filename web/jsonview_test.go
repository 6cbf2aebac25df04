package web

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// wellFormed fails t unless html parses as XML inside a root element.
func wellFormed(t *testing.T, html string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader("<root>" + html + "</root>"))
	dec.Strict = true
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%.2000s", err, html)
		}
	}
}

// secretSample holds one credential per way a value can be sensitive, each a distinct word so
// that its absence from the output means it was hidden.
func secretSample() (any, []string) {
	long := strings.Repeat("x", 995) + " Bearer SECRET-ACROSS-CUT and more"
	v := map[string]any{
		"accessToken": "SECRET-A",
		"credentials": []any{[]any{"SECRET-B"}, map[string]any{"x": "SECRET-C"}},
		"headers": []map[string]any{
			{"name": "X-API-Key", "value": "SECRET-D"},
			{"name": "Accept", "value": "application/json"},
		},
		"request": map[string]any{
			"body":            "grant_type=client_credentials&client_secret=SECRET-E",
			"url":             "https://bob:SECRET-F@example.com/token",
			"auth":            map[string]any{"user": "bob", "password": "SECRET-G"},
			"Bearer SECRET-H": "a key that is a credential",
		},
		"response":   `{"access_token":"SECRET-I","token_type":"Bearer","expires_in":3600}`,
		"log":        "Authorization: Bearer SECRET-J",
		"data":       "eyJhbGciOiJub25lIn0.eyJzdWIiOiJTRUNSRVQtSyJ9.U0VDUkVULUs",
		"long":       long,
		"Password":   map[string]any{"nested": map[string]any{"deeper": []any{"SECRET-L"}}},
		"expires_in": 3600.0,
		"token_type": "Bearer",
	}
	return v, []string{"SECRET-A", "SECRET-B", "SECRET-C", "SECRET-D", "SECRET-E", "SECRET-F",
		"SECRET-G", "SECRET-H", "SECRET-I", "SECRET-J", "eyJhbGciOiJub25lIn0", "SECRET-ACROSS-CUT",
		"SECRET-L"}
}

func TestJSONHTMLMasking(t *testing.T) {
	v, secrets := secretSample()
	for _, o := range []jsonViewOptions{{}, {OpenDepth: -1}, {OpenDepth: 100, MaxString: 5, MaxEntries: 1}, {MaxString: -1, MaxEntries: -1}} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			html := string(jsonHTML(v, o))
			wellFormed(t, html)
			for _, s := range secrets {
				if strings.Contains(html, s) {
					t.Errorf("secret %q shows in the HTML", s)
				}
			}
			if o.MaxEntries < 0 {
				for _, want := range []string{
					`<span class="j-key">"accessToken"</span>: <span class="j-masked" title="hidden: sensitive key">••••••••</span>`,
					`<span class="j-key">"token_type"</span>: <span class="j-str">"Bearer"</span>`,
					`<span class="j-key">"expires_in"</span>: <span class="j-num">3600</span>`,
					`<span class="j-str">"grant_type=client_credentials&amp;client_secret=<span class="j-masked" title="hidden: credential in text">••••••••</span>"</span>`,
				} {
					if !strings.Contains(html, want) {
						t.Errorf("HTML lacks %s", want)
					}
				}
			}
		})
	}
	t.Run("reveal", func(t *testing.T) {
		html := string(jsonHTML(v, jsonViewOptions{Reveal: true, MaxString: -1}))
		wellFormed(t, html)
		for _, s := range secrets {
			if !strings.Contains(html, s) {
				t.Errorf("secret %q missing from the revealed HTML", s)
			}
		}
		if strings.Contains(html, "j-masked") {
			t.Errorf("revealed HTML still masks something")
		}
	})
	t.Run("masked copy renders as hidden", func(t *testing.T) {
		html := string(jsonHTML(maskValue(v), jsonViewOptions{Reveal: true}))
		for _, s := range secrets {
			if strings.Contains(html, s) {
				t.Errorf("secret %q shows in the HTML of maskValue's copy", s)
			}
		}
		if !strings.Contains(html, `<span class="j-key">"accessToken"</span>: <span class="j-masked" title="hidden: sensitive key">••••••••</span>`) {
			t.Errorf("a value maskValue hid does not render as hidden:\n%s", html)
		}
	})
}

func TestJSONHTMLUnder(t *testing.T) {
	opts := []jsonViewOptions{{}, {Reveal: true}}
	tests := []struct {
		key  string
		v    any
		want string // in the masked view
	}{
		{"accessToken", "SECRET-A", maskedKeySpan},
		{"accessToken", map[string]any{"t": []any{"SECRET-A"}}, maskedKeySpan},
		{"accessToken", nil, `<span class="j-null">null</span>`},
		{"expiresAt", "2030-01-01", `<span class="j-str">"2030-01-01"</span>`},
		{"state", map[string]any{"password": "SECRET-A"}, maskedKeySpan},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			for _, o := range opts {
				got := string(jsonHTMLUnder(tt.key, tt.v, o))
				if same := string(jsonHTML(maskUnder(tt.key, tt.v), o)); !o.Reveal && got != same {
					t.Errorf("jsonHTMLUnder and jsonHTML(maskUnder) differ:\n%s\n%s", got, same)
				}
				if reveal := string(jsonHTML(tt.v, o)); o.Reveal && got != reveal {
					t.Errorf("revealed jsonHTMLUnder differs from jsonHTML:\n%s\n%s", got, reveal)
				}
				if !o.Reveal && !strings.Contains(got, tt.want) {
					t.Errorf("jsonHTMLUnder(%q) = %s, want it to hold %s", tt.key, got, tt.want)
				}
				if !o.Reveal && strings.Contains(got, "SECRET") {
					t.Errorf("jsonHTMLUnder(%q) shows the secret: %s", tt.key, got)
				}
			}
		})
	}
}

func TestJSONHTMLEscaping(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want []string
	}{
		{"script in key and value",
			map[string]any{`<script>alert("k")</script>`: `<b>"q" & 'a'</b>`},
			[]string{
				`<span class="j-key">"&lt;script&gt;alert(\"k\")&lt;/script&gt;"</span>`,
				`<span class="j-str">"&lt;b&gt;\"q\" &amp; 'a'&lt;/b&gt;"</span>`,
			}},
		{"control characters", "a\nb\t\x00\x7f\\", []string{`"a\nb\t\u0000\u007f\\"`}},
		{"invisible and direction characters", "x\u202ey\u200bz\u2028\ufeff", []string{`"x\u202ey\u200bz\u2028\ufeff"`}},
		{"invalid UTF-8", "a\xffb", []string{`"a\ufffdb"`}},
		{"other scripts stay", "héllo 世界 🙂", []string{`"héllo 世界 🙂"`}},
		{"json.Number is escaped", json.Number("1<2"), []string{`<span class="j-num">1&lt;2</span>`}},
		{"unencodable type", make(chan int), []string{`<span class="j-err">unrenderable value of type chan int</span>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := string(jsonHTML(tt.v, jsonViewOptions{}))
			wellFormed(t, html)
			for _, w := range tt.want {
				if !strings.Contains(html, w) {
					t.Errorf("HTML lacks %s:\n%s", w, html)
				}
			}
			if strings.Contains(html, "<script") || strings.Contains(html, "<b>") {
				t.Errorf("markup from the data reached the HTML:\n%s", html)
			}
		})
	}
}

var scalarRE = regexp.MustCompile(`^<div class="jv"><span class="(j-[a-z]+)">(.*)</span></div>$`)

func TestJSONHTMLScalars(t *testing.T) {
	type named struct {
		A int       `json:"a"`
		T time.Time `json:"t"`
	}
	tests := []struct {
		v         any
		wantClass string
	}{
		{nil, "j-null"},
		{true, "j-bool"},
		{false, "j-bool"},
		{0.0, "j-num"},
		{math.Copysign(0, -1), "j-num"},
		{0.1, "j-num"},
		{100.0, "j-num"},
		{1e20, "j-num"},
		{1e21, "j-num"},
		{1.5e-7, "j-num"},
		{123456789.125, "j-num"},
		{-2.5e300, "j-num"},
		{float32(0.1), "j-num"},
		{float32(1e22), "j-num"},
		{int64(math.MaxInt64), "j-num"},
		{int64(math.MinInt64), "j-num"},
		{uint64(math.MaxUint64), "j-num"},
		{int(-7), "j-num"},
		{int8(-8), "j-num"},
		{uint16(16), "j-num"},
		{json.Number("1.50"), "j-num"},
		{"plain", "j-str"},
		{"", "j-str"},
	}
	for _, tt := range tests {
		want, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(string(want), func(t *testing.T) {
			html := string(jsonHTML(tt.v, jsonViewOptions{}))
			m := scalarRE.FindStringSubmatch(html)
			if m == nil {
				t.Fatalf("jsonHTML(%#v) = %s, want one scalar span", tt.v, html)
			}
			if m[1] != tt.wantClass || m[2] != string(want) {
				t.Errorf("jsonHTML(%#v) = class %s text %s, want class %s text %s (as encoding/json prints it)",
					tt.v, m[1], m[2], tt.wantClass, want)
			}
		})
	}
	t.Run("struct", func(t *testing.T) {
		html := string(jsonHTML(named{A: 1, T: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, jsonViewOptions{}))
		for _, w := range []string{`<span class="j-key">"a"</span>: <span class="j-num">1</span>`,
			`<span class="j-key">"t"</span>: <span class="j-str">"2030-01-02T03:04:05Z"</span>`} {
			if !strings.Contains(html, w) {
				t.Errorf("HTML lacks %s:\n%s", w, html)
			}
		}
	})
	t.Run("NaN", func(t *testing.T) {
		if html := string(jsonHTML(math.NaN(), jsonViewOptions{})); !strings.Contains(html, `<span class="j-num">NaN</span>`) {
			t.Errorf("jsonHTML(NaN) = %s", html)
		}
	})
}

func TestJSONHTMLContainers(t *testing.T) {
	items := make([]map[string]any, 1000)
	for i := range items {
		items[i] = map[string]any{"i": int64(i)}
	}
	wide := map[string]any{}
	for i := range 150 {
		wide[fmt.Sprintf("k%03d", i)] = i
	}
	tests := []struct {
		name    string
		v       any
		o       jsonViewOptions
		want    []string
		notWant []string
		entries int // <li> elements expected, -1 to skip
	}{
		{"one key", map[string]any{"a": 1.0}, jsonViewOptions{}, []string{`<span class="j-count">{1 key}</span>`}, nil, 1},
		{"keys sorted", map[string]any{"b": 2.0, "a": 1.0, "c": 3.0}, jsonViewOptions{},
			[]string{`{3 keys}`, `<li><span class="j-key">"a"</span>: <span class="j-num">1</span></li><li><span class="j-key">"b"</span>: <span class="j-num">2</span></li><li><span class="j-key">"c"</span>`}, nil, 3},
		{"one item", []any{"x"}, jsonViewOptions{}, []string{`<span class="j-count">[1 item]</span>`, `<span class="j-idx">0</span>: <span class="j-str">"x"</span>`}, nil, 1},
		{"empty", map[string]any{"o": map[string]any{}, "a": []any{}}, jsonViewOptions{},
			[]string{`<span class="j-key">"a"</span>: <span class="j-empty">[]</span>`, `<span class="j-key">"o"</span>: <span class="j-empty">{}</span>`}, nil, 2},
		{"1,000 items cut at 100", items, jsonViewOptions{},
			[]string{`[1,000 items]`, `<span class="j-idx">99</span>`, `<li class="j-more">… 900 more items</li>`},
			[]string{`<span class="j-idx">100</span>`}, 100 + 100 + 1},
		{"1,000 items, all", items, jsonViewOptions{MaxEntries: -1}, []string{`<span class="j-idx">999</span>`}, []string{"j-more"}, 2000},
		{"150 keys cut at 100", wide, jsonViewOptions{}, []string{`{150 keys}`, `"k099"`, `<li class="j-more">… 50 more keys</li>`}, []string{`"k100"`}, 101},
		{"one more key", wide, jsonViewOptions{MaxEntries: 149}, []string{`<li class="j-more">… 1 more key</li>`}, nil, 150},
		{"typed nil", map[string]any{"m": map[string]any(nil), "s": []any(nil), "i": []map[string]any(nil)}, jsonViewOptions{},
			[]string{`"i"</span>: <span class="j-null">null</span>`, `"m"</span>: <span class="j-null">null</span>`, `"s"</span>: <span class="j-null">null</span>`}, nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := string(jsonHTML(tt.v, tt.o))
			wellFormed(t, html)
			for _, w := range tt.want {
				if !strings.Contains(html, w) {
					t.Errorf("HTML lacks %s", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(html, w) {
					t.Errorf("HTML holds %s", w)
				}
			}
			if got := strings.Count(html, "<li"); tt.entries >= 0 && got != tt.entries {
				t.Errorf("%d list entries, want %d", got, tt.entries)
			}
		})
	}
}

func TestJSONHTMLOpenDepth(t *testing.T) {
	v := map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": 1.0}}}}
	tests := []struct {
		openDepth int
		wantOpen  int
	}{
		{0, 2}, {1, 1}, {2, 2}, {3, 3}, {10, 4}, {-1, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.openDepth), func(t *testing.T) {
			html := string(jsonHTML(v, jsonViewOptions{OpenDepth: tt.openDepth}))
			if got := strings.Count(html, "<details"); got != 4 {
				t.Fatalf("%d <details>, want 4", got)
			}
			if got := strings.Count(html, `open="open"`); got != tt.wantOpen {
				t.Errorf("%d open, want %d", got, tt.wantOpen)
			}
			// The open ones are the outer ones.
			if tt.wantOpen > 0 && tt.wantOpen < 4 && strings.LastIndex(html, `open="open"`) > strings.Index(html, `<details class="j-obj">`) {
				t.Errorf("an inner <details> is open while an outer one is closed:\n%s", html)
			}
		})
	}
}

func TestJSONHTMLTruncation(t *testing.T) {
	tests := []struct {
		name      string
		s         string
		max       int
		wantShown string
		wantMore  string
	}{
		{"default cut", strings.Repeat("a", 1500), 0, `"` + strings.Repeat("a", 1000) + `</span>`, `… 500 more characters`},
		{"exactly the limit", strings.Repeat("a", 1000), 0, `"` + strings.Repeat("a", 1000) + `"</span>`, ""},
		{"characters, not bytes", strings.Repeat("é", 1200), 10, `"` + strings.Repeat("é", 10) + `</span>`, `… 1,190 more characters`},
		{"escapes count once", strings.Repeat("<", 20), 3, `"&lt;&lt;&lt;</span>`, `… 17 more characters`},
		{"never cut", strings.Repeat("a", 5000), -1, strings.Repeat("a", 5000) + `"</span>`, ""},
		{"credential across the cut", strings.Repeat("x", 8) + " Bearer SECRET-TOKEN tail", 18,
			`"xxxxxxxx Bearer <span class="j-masked" title="hidden: credential in text">••••••••</span></span>`, `… 5 more characters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := string(jsonHTML(tt.s, jsonViewOptions{MaxString: tt.max}))
			wellFormed(t, html)
			if !strings.Contains(html, tt.wantShown) {
				t.Errorf("HTML lacks %s:\n%s", tt.wantShown, html)
			}
			if tt.wantMore == "" && strings.Contains(html, "j-cut") || tt.wantMore != "" && !strings.Contains(html, tt.wantMore) {
				t.Errorf("want cut note %q:\n%s", tt.wantMore, html)
			}
			if strings.Contains(html, "SECRET") {
				t.Errorf("a credential shows:\n%s", html)
			}
		})
	}
}

func TestJSONHTMLDeepAndHuge(t *testing.T) {
	t.Run("10,000 levels", func(t *testing.T) {
		var v any = "SECRET-DEEP"
		for i := range 10_000 {
			if i%2 == 0 {
				v = []any{v}
			} else {
				v = map[string]any{"a": v}
			}
		}
		html := string(jsonHTML(v, jsonViewOptions{}))
		wellFormed(t, html)
		if got := strings.Count(html, "<details"); got != maxViewDepth {
			t.Errorf("%d <details>, want %d", got, maxViewDepth)
		}
		if !strings.Contains(html, `<span class="j-deep" title="nested more than 64 levels deep">…</span>`) {
			t.Errorf("no depth note")
		}
		if strings.Contains(html, "SECRET-DEEP") {
			t.Errorf("a value beyond the depth cap shows")
		}
	})
	t.Run("output limit", func(t *testing.T) {
		// 100 entries each pointing at the same object, ten levels: 100^10 paths.
		var v any = strings.Repeat("s", 200)
		for range 10 {
			m := make(map[string]any, 100)
			for i := range 100 {
				m[fmt.Sprint(i)] = v
			}
			v = m
		}
		html := string(jsonHTML(v, jsonViewOptions{OpenDepth: 100}))
		wellFormed(t, html)
		if len(html) > maxViewBytes+64<<10 {
			t.Errorf("%d bytes of HTML, want about %d at most", len(html), maxViewBytes)
		}
		if !strings.Contains(html, "(output limit reached)</li>") {
			t.Errorf("no output limit note")
		}
	})
	t.Run("cycle", func(t *testing.T) {
		m := map[string]any{"x": 1.0}
		m["self"] = m
		html := string(jsonHTML(m, jsonViewOptions{}))
		wellFormed(t, html)
		if !strings.Contains(html, "j-deep") {
			t.Errorf("no depth note")
		}
	})
}

var classRE = regexp.MustCompile(`class="([^"]+)"`)

// TestJSONViewCSS checks that the stylesheet styles every class jsonHTML writes.
func TestJSONViewCSS(t *testing.T) {
	css, err := os.ReadFile("assets/jsonview.css")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := secretSample()
	var html strings.Builder
	for _, x := range []any{v, nil, true, 1.0, map[string]any{}, []any{}, make(chan int), strings.Repeat("a", 2000)} {
		html.WriteString(string(jsonHTML(x, jsonViewOptions{MaxEntries: 2})))
	}
	deep := any(1.0)
	for range 100 {
		deep = []any{deep}
	}
	html.WriteString(string(jsonHTML(deep, jsonViewOptions{})))

	seen := map[string]bool{}
	for _, m := range classRE.FindAllStringSubmatch(html.String(), -1) {
		for _, c := range strings.Fields(m[1]) {
			seen[c] = true
		}
	}
	for _, c := range []string{"jv", "j-str", "j-num", "j-bool", "j-null", "j-key", "j-masked", "j-more", "j-cut", "j-deep", "j-err", "j-empty"} {
		if !seen[c] {
			t.Errorf("the sample does not exercise class %s", c)
		}
	}
	for c := range seen {
		if c == "j-obj" || c == "j-arr" {
			continue // styled as details
		}
		if !regexp.MustCompile(`\.` + regexp.QuoteMeta(c) + `\b`).Match(css) {
			t.Errorf("assets/jsonview.css has no rule for .%s", c)
		}
	}
	if !strings.Contains(string(css), "prefers-color-scheme: dark") {
		t.Errorf("assets/jsonview.css has no dark scheme")
	}
}

func typicalItem() map[string]any {
	return map[string]any{
		"statusCode": int64(200),
		"headers": map[string]any{
			"content-type":  "application/json; charset=utf-8",
			"date":          "Mon, 02 Jan 2030 15:04:05 GMT",
			"cache-control": "no-store",
			"set-cookie":    []any{"sid=abc123; Path=/; HttpOnly", "theme=dark"},
			"x-request-id":  "5f0c8a7e-2b1d-4c3e-9f8a-1b2c3d4e5f60",
		},
		"body": map[string]any{
			"access_token": "demo-3q2+7w9ZkVhM0bYt6uJx1sPq",
			"token_type":   "Bearer",
			"expires_in":   json.Number("3600"),
			"scope":        "read write",
			"user": map[string]any{
				"id": float64(42), "name": "Ada Lovelace", "email": "ada@example.com",
				"roles": []any{"admin", "dev"}, "active": true, "manager": nil,
				"bio": strings.Repeat("Analyst & <poet> of science. ", 20),
			},
		},
	}
}

func BenchmarkJSONHTMLItem(b *testing.B) {
	item := typicalItem()
	b.ReportAllocs()
	for b.Loop() {
		jsonHTML(item, jsonViewOptions{})
	}
}

func BenchmarkJSONHTML1000Items(b *testing.B) {
	items := make([]map[string]any, 1000)
	for i := range items {
		it := typicalItem()
		it["index"] = int64(i)
		items[i] = it
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(jsonHTML(items, jsonViewOptions{}))
	}
	b.ReportMetric(float64(n), "bytes/page")
}

func BenchmarkMaskValueItem(b *testing.B) {
	item := typicalItem()
	b.ReportAllocs()
	for b.Loop() {
		maskValue(item)
	}
}
