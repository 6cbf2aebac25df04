package redact

import (
	"fmt"
	"sync"
	"testing"
)

// The memo must never change an answer: cold, warm, after it filled up and started again,
// and from many goroutines at once.
func TestMemoAnswersAsTheRulesDo(t *testing.T) {
	r := New(nil, map[string]string{"API_KEY": "k3y-0f-the-partner-api"})
	strs := []string{
		"", "plain text", "Bearer abc.def-123", "token=s3cr3t&x=1", "k3y-0f-the-partner-api",
		"https://user:pa55@example.com/x", "accessToken", "X-API-Key", "key", "user-agent",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-xyz",
	}
	fresh := &Redactor{keys: r.keys, secrets: r.secrets, rep: r.rep} // the same rules, no memo of its own
	check := func(t *testing.T) {
		for _, s := range strs {
			if got, want := r.maskString(s), fresh.String(s); got != want {
				t.Errorf("maskString(%q) = %q, want %q", s, got, want)
			}
			if got, want := r.keys.Sensitive(s), r.keys.sensitive(s); got != want {
				t.Errorf("Sensitive(%q) = %v, want %v", s, got, want)
			}
		}
	}
	check(t) // cold
	check(t) // warm
	for i := range memoSize + 10 {
		s := fmt.Sprintf("filler %d", i)
		r.maskString(s)
		r.keys.Sensitive(s)
	}
	if n, k := len(r.masked.m), len(r.keys.known.m); n > memoSize || k > memoSize {
		t.Errorf("memos hold %d and %d strings, want at most %d", n, k, memoSize)
	}
	check(t) // after starting again

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2 * memoSize {
				r.maskString(fmt.Sprintf("g%d %d", g, i%700))
				check(t)
			}
		})
	}
	wg.Wait()
}

// A masked record is the same with a memo as without.
func TestMemoMasksObjectsAsBefore(t *testing.T) {
	r := New(nil, map[string]string{"API_KEY": "k3y-0f-the-partner-api"})
	fresh := &Redactor{keys: r.keys, secrets: r.secrets, rep: r.rep}
	item := map[string]any{
		"headers":     map[string]any{"authorization": "Basic dXNlcjpwYXNz", "user-agent": "curl/8"},
		"accessToken": "tok-1234567890",
		"url":         "https://api.example.com/v1?key=k3y-0f-the-partner-api",
		"list":        []any{"Bearer zzz", map[string]any{"name": "X-API-Key", "value": "v"}},
	}
	for range 3 {
		got, want := fmt.Sprint(r.ObjectShared(item)), fmt.Sprint(fresh.ObjectShared(item))
		if got != want {
			t.Fatalf("with memo %s\nwithout    %s", got, want)
		}
	}
}
