package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/flowd/flowd/engine"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func keyring(t testing.TB, current []byte, old ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, old...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawStatic is the value column of one static_data row exactly as the file holds it.
func rawStatic(t *testing.T, s *SQLite, flowID, key string) string {
	t.Helper()
	var raw string
	if err := s.r.QueryRow(`SELECT value FROM static_data WHERE flow_id = ? AND key = ?`, flowID, key).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func setRaw(t *testing.T, s *SQLite, flowID, key, raw string) {
	t.Helper()
	if _, err := s.w.Exec(`UPDATE static_data SET value = ? WHERE flow_id = ? AND key = ?`, raw, flowID, key); err != nil {
		t.Fatal(err)
	}
}

func commit(t *testing.T, s engine.StaticStore, flowID string, changes ...engine.StaticChange) *engine.StaticCommit {
	t.Helper()
	c := &engine.StaticCommit{FlowID: flowID, Changes: changes}
	if err := s.CommitStatic(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseKey(t *testing.T) {
	key := newKey(t)
	good := []struct{ name, in string }{
		{"base64", base64.StdEncoding.EncodeToString(key)},
		{"base64 with newline, as from a file", base64.StdEncoding.EncodeToString(key) + "\n"},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(key)},
		{"base64 URL-safe", base64.URLEncoding.EncodeToString(key)},
		{"base64 URL-safe unpadded", base64.RawURLEncoding.EncodeToString(key)},
		{"hex", hex.EncodeToString(key)},
		{"hex upper case", strings.ToUpper(hex.EncodeToString(key))},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("ParseKey = %x, %v; want %x", got, err, key)
			}
		})
	}
	bad := []struct{ name, in string }{
		{"empty", ""},
		{"passphrase", "correct horse battery staple"},
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16])},
		{"31 bytes", base64.StdEncoding.EncodeToString(key[:31])},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(key, 1))},
		{"63 hex digits", hex.EncodeToString(key)[:63]},
		{"64 characters, not hex", strings.Repeat("z", 64)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if err == nil {
				t.Fatalf("ParseKey accepted it: %x", got)
			}
			if !strings.Contains(err.Error(), "openssl rand -base64 32") {
				t.Errorf("error does not say how to make a key: %v", err)
			}
			if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
	if _, err := NewKeyring(key[:16]); err == nil {
		t.Error("NewKeyring accepted a 16-byte key")
	}
}

func TestKeyID(t *testing.T) {
	a, b := newKey(t), newKey(t)
	if KeyID(a) != KeyID(append([]byte(nil), a...)) {
		t.Error("KeyID is not a function of the key")
	}
	if KeyID(a) == KeyID(b) {
		t.Error("two random keys share an id")
	}
	if id := KeyID(a); len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("KeyID = %q, want 8 hex digits", id)
	}
}

func TestSealedRoundTrip(t *testing.T) {
	db := openTest(t)
	key := newKey(t)
	s := NewSealedStore(db, keyring(t, key))
	values := map[string]any{
		"string":         "s3cr3t <token> & more",
		"empty string":   "",
		"true":           true,
		"false":          false,
		"null":           nil,
		"int":            int64(42),
		"big int":        int64(1<<62 + 1),
		"negative":       int64(-7),
		"float":          1.5,
		"tiny float":     1e-300,
		"unicode":        "zürich ☃ \u0000 \"quoted\"",
		"looks sealed":   "flowd:enc:v1:00000000:AAAA",
		"array":          []any{int64(1), 2.5, "x", nil, false},
		"empty array":    []any{},
		"empty object":   map[string]any{},
		"nested":         map[string]any{"token": "abc", "scopes": []any{"read"}, "meta": map[string]any{"n": int64(2)}},
		"long":           strings.Repeat("0123456789", 10_000),
		"key with \x00":  "a NUL in a key is fine: the flow id comes first",
		"":               "empty key",
		"ключ/日本/emoji😀": "unicode key",
	}
	var changes []engine.StaticChange
	for k, v := range values {
		changes = append(changes, engine.StaticChange{Key: k, After: v})
	}
	commit(t, s, "flow", changes...)

	loaded, err := s.LoadStatic(context.Background(), "flow")
	if err != nil {
		t.Fatal(err)
	}
	prefix := "flowd:enc:v1:" + KeyID(key) + ":"
	for k, want := range values {
		t.Run(fmt.Sprintf("%.20q", k), func(t *testing.T) {
			got, ok := loaded[k]
			if !ok || !reflect.DeepEqual(got.Value, want) || got.Version != 1 {
				t.Errorf("loaded %#v (present %v), want %#v at version 1", got, ok, want)
			}
			raw := rawStatic(t, db, "flow", k)
			if !strings.HasPrefix(raw, `"`+prefix) {
				t.Errorf("stored %.60q, want a sealed string starting %q", raw, prefix)
			}
			if s, ok := want.(string); ok && len(s) > 3 && strings.Contains(raw, s) {
				t.Errorf("the stored form holds the plaintext")
			}
		})
	}
	st, err := s.Static(context.Background(), "flow")
	if err != nil || !reflect.DeepEqual(st["nested"], values["nested"]) || len(st) != len(values) {
		t.Errorf("Static = %d keys, nested %#v, %v", len(st), st["nested"], err)
	}

	// Equal values seal differently: a random nonce each time.
	commit(t, s, "flow", engine.StaticChange{Key: "a", After: "same"}, engine.StaticChange{Key: "b", After: "same"})
	if rawStatic(t, db, "flow", "a") == rawStatic(t, db, "flow", "b") {
		t.Error("two equal values have the same stored form")
	}
}

func TestSealedBeforeIsOpened(t *testing.T) {
	s := NewSealedStore(openTest(t), keyring(t, newKey(t)))
	commit(t, s, "flow", engine.StaticChange{Key: "k", After: map[string]any{"token": "t1"}})
	c := commit(t, s, "flow",
		engine.StaticChange{Key: "k", After: "t2"},
		engine.StaticChange{Key: "k", After: int64(3)},
		engine.StaticChange{Key: "k", Deleted: true},
		engine.StaticChange{Key: "new", After: "n"},
	)
	want := []any{map[string]any{"token": "t1"}, "t2", int64(3), nil}
	for i, ch := range c.Changes {
		if !reflect.DeepEqual(ch.Before, want[i]) {
			t.Errorf("change %d: Before = %#v, want %#v", i, ch.Before, want[i])
		}
	}
	if c.Changes[0].After != "t2" || c.Changes[3].After != "n" {
		t.Errorf("the caller's After values were changed: %#v", c.Changes)
	}
}

func TestSealedBrokenValues(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	tests := []struct {
		name    string
		breakIt func(t *testing.T, db *SQLite)
		flow    string
		key     string
		want    error
	}{
		{"flipped ciphertext byte", func(t *testing.T, db *SQLite) {
			raw := []byte(rawStatic(t, db, "flow", "token"))
			i := len(raw) - 10 // inside the base64 of the ciphertext
			raw[i] ^= 'A' ^ 'B'
			if raw[i] == '"' || raw[i] == '\\' {
				raw[i] = 'Q'
			}
			setRaw(t, db, "flow", "token", string(raw))
		}, "flow", "token", ErrSealBroken},
		{"truncated", func(t *testing.T, db *SQLite) {
			raw := rawStatic(t, db, "flow", "token")
			setRaw(t, db, "flow", "token", raw[:len(raw)-21]+`"`)
		}, "flow", "token", ErrSealBroken},
		{"copied to another key", func(t *testing.T, db *SQLite) {
			setRaw(t, db, "flow", "other", rawStatic(t, db, "flow", "token"))
		}, "flow", "other", ErrSealBroken},
		{"copied to another flow", func(t *testing.T, db *SQLite) {
			setRaw(t, db, "flow2", "token", rawStatic(t, db, "flow", "token"))
		}, "flow2", "token", ErrSealBroken},
		{"key id changed", func(t *testing.T, db *SQLite) {
			raw := rawStatic(t, db, "flow", "token")
			setRaw(t, db, "flow", "token", strings.Replace(raw, KeyID(key), "00000000", 1))
		}, "flow", "token", ErrUnknownKey},
		{"unknown format", func(t *testing.T, db *SQLite) {
			setRaw(t, db, "flow", "token", `"flowd:enc:v9:whatever"`)
		}, "flow", "token", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t)
			s := NewSealedStore(db, keyring(t, key))
			commit(t, s, "flow", engine.StaticChange{Key: "token", After: "s3cret-token"}, engine.StaticChange{Key: "other", After: "x"})
			commit(t, s, "flow2", engine.StaticChange{Key: "token", After: "y"})
			tt.breakIt(t, db)

			got, err := s.LoadStatic(ctx, tt.flow)
			if err == nil {
				t.Fatalf("LoadStatic = %#v, want an error", got)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			for _, part := range []string{fmt.Sprintf("%q", tt.flow), fmt.Sprintf("%q", tt.key)} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error does not name %s: %v", part, err)
				}
			}
			if strings.Contains(err.Error(), "flowd:enc:") && tt.want != nil {
				t.Errorf("error quotes the sealed value: %v", err)
			}
			if _, err := s.Static(ctx, tt.flow); err == nil {
				t.Error("Static read a broken value")
			}
		})
	}
}

func TestSealedUnknownKey(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	a, b := newKey(t), newKey(t)
	commit(t, NewSealedStore(db, keyring(t, a)), "token-refresh", engine.StaticChange{Key: "accessToken", After: "tok"})

	for name, keys := range map[string]*Keyring{
		"another key":          keyring(t, b),
		"no key":               nil,
		"old keys without it":  keyring(t, nil, b),
		"empty keyring (zero)": {},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := NewSealedStore(db, keys).LoadStatic(ctx, "token-refresh")
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("LoadStatic = %#v, %v; want ErrUnknownKey", got, err)
			}
			for _, part := range []string{`"token-refresh"`, `"accessToken"`, "key id " + KeyID(a), "FLOWD_ENCRYPTION_KEY_OLD"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error does not say %s: %v", part, err)
				}
			}
		})
	}
	t.Run("old key opens", func(t *testing.T) {
		got, err := NewSealedStore(db, keyring(t, b, a)).Static(ctx, "token-refresh")
		if err != nil || got["accessToken"] != "tok" {
			t.Fatalf("Static = %#v, %v", got, err)
		}
	})
	t.Run("a blind write over it keeps the commit and notes the unreadable Before", func(t *testing.T) {
		s := NewSealedStore(db, keyring(t, b))
		c := commit(t, s, "token-refresh", engine.StaticChange{Key: "accessToken", After: "tok2"})
		note, _ := c.Changes[0].Before.(string)
		if !strings.Contains(note, "unreadable") || !strings.Contains(note, KeyID(a)) {
			t.Errorf("Before = %#v, want a note naming key id %s", c.Changes[0].Before, KeyID(a))
		}
		if got, err := s.Static(ctx, "token-refresh"); err != nil || got["accessToken"] != "tok2" {
			t.Errorf("Static = %#v, %v", got, err)
		}
	})
}

func TestSealedReadsPlainValues(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	commit(t, db, "flow", engine.StaticChange{Key: "plain", After: map[string]any{"n": int64(1)}})
	s := NewSealedStore(db, keyring(t, newKey(t)))
	commit(t, s, "flow", engine.StaticChange{Key: "sealed", After: "x"})
	got, err := s.Static(ctx, "flow")
	want := map[string]any{"plain": map[string]any{"n": int64(1)}, "sealed": "x"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Static = %#v, %v; want %#v", got, err, want)
	}
	// Overwriting a plain value seals it, and Before shows the plain value.
	c := commit(t, s, "flow", engine.StaticChange{Key: "plain", After: int64(2)})
	if !reflect.DeepEqual(c.Changes[0].Before, map[string]any{"n": int64(1)}) {
		t.Errorf("Before = %#v", c.Changes[0].Before)
	}
	if raw := rawStatic(t, db, "flow", "plain"); !strings.HasPrefix(raw, `"flowd:enc:v1:`) {
		t.Errorf("stored %q, want sealed", raw)
	}

	t.Run("without a key, values stay plain", func(t *testing.T) {
		plain := NewSealedStore(db, nil)
		commit(t, plain, "flow", engine.StaticChange{Key: "p2", After: "visible"})
		if raw := rawStatic(t, db, "flow", "p2"); raw != `"visible"` {
			t.Errorf("stored %q", raw)
		}
		err := plain.CommitStatic(ctx, &engine.StaticCommit{FlowID: "flow", Changes: []engine.StaticChange{{Key: "p3", After: "flowd:enc:v1:12345678:AAAA"}}})
		if err == nil || !strings.Contains(err.Error(), "encryption on") {
			t.Errorf("a plain string that looks sealed was stored: %v", err)
		}
	})
}

func TestSealedConflictsUnchanged(t *testing.T) {
	s := NewSealedStore(openTest(t), keyring(t, newKey(t)))
	commit(t, s, "flow", engine.StaticChange{Key: "a", After: int64(1)})
	commit(t, s, "flow", engine.StaticChange{Key: "a", After: int64(2)})
	c := &engine.StaticCommit{FlowID: "flow", Reads: map[string]int64{"a": 1}, Changes: []engine.StaticChange{{Key: "a", After: int64(100)}}}
	err := s.CommitStatic(context.Background(), c)
	if !errors.Is(err, engine.ErrStaticConflict) {
		t.Fatalf("stale commit = %v, want ErrStaticConflict", err)
	}
	if c.Changes[0].Before != nil {
		t.Errorf("a failed commit filled Before: %#v", c.Changes[0].Before)
	}
	got, err := s.LoadStatic(context.Background(), "flow")
	if err != nil || got["a"].Value != int64(2) || got["a"].Version != 2 {
		t.Errorf("after the conflict: %#v, %v", got, err)
	}
}

// increment runs one read-modify-write of flow's counter on s, retrying on conflicts, and also
// writes the writer's own key.
func increment(ctx context.Context, s engine.StaticStore, own string, j int) error {
	for {
		cur, err := s.LoadStatic(ctx, "flow")
		if err != nil {
			return err
		}
		n, _ := cur["counter"].Value.(int64)
		err = s.CommitStatic(ctx, &engine.StaticCommit{
			FlowID: "flow",
			Reads:  map[string]int64{"counter": cur["counter"].Version},
			Changes: []engine.StaticChange{
				{Key: "counter", After: n + 1},
				{Key: own, After: int64(j)},
			},
		})
		if !errors.Is(err, engine.ErrStaticConflict) {
			return err
		}
	}
}

// TestSealedConcurrentIncrements: many writers on two stores over one file, as two processes,
// incrementing one counter through sealed stores lose nothing, and rotations interleaved with
// their commits neither lose an increment nor make a commit fail. Half the writers still seal
// with the old key, so rotations have values to move.
func TestSealedConcurrentIncrements(t *testing.T) {
	const writers, commits, rotateEvery = 16, 40, 8
	ctx := context.Background()
	a, b := newKey(t), newKey(t)
	first := openTest(t)
	second, err := Open(ctx, first.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	onA := NewSealedStore(first, keyring(t, a, b))
	onB := NewSealedStore(second, keyring(t, b, a))
	rotation := keyring(t, b, a)
	commit(t, onA, "flow", engine.StaticChange{Key: "counter", After: int64(0)})

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		resealed int
	)
	for g := range writers {
		s := onA
		if g%2 == 1 {
			s = onB
		}
		wg.Go(func() {
			for j := range commits {
				if err := increment(ctx, s, fmt.Sprintf("w%02d", g), j); err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
				if j%rotateEvery == 0 {
					st, err := NewSealedStore(s.Backend, rotation).Rotate(ctx)
					if err != nil {
						t.Errorf("writer %d: rotate: %v", g, err)
						return
					}
					mu.Lock()
					resealed += st.Resealed
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if _, err := NewSealedStore(first, rotation).Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := NewSealedStore(first, keyring(t, b)).LoadStatic(ctx, "flow")
	if err != nil {
		t.Fatalf("after the last rotation, the new key alone: %v", err)
	}
	if c := got["counter"]; c.Value != int64(writers*commits) || c.Version != writers*commits+1 {
		t.Errorf("counter = %#v, want %d at version %d", c, writers*commits, writers*commits+1)
	}
	for g := range writers {
		if v := got[fmt.Sprintf("w%02d", g)]; v.Value != int64(commits-1) || v.Version != commits {
			t.Errorf("writer %d's key = %#v", g, v)
		}
	}
	if resealed == 0 {
		t.Error("no rotation found a value to move: the test did not interleave")
	}
	t.Logf("%d rotations re-sealed %d values", writers*commits/rotateEvery, resealed)
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	a, b := newKey(t), newKey(t)
	db := openTest(t)
	values := map[string]map[string]any{
		"f1": {"plain": "p", "n": int64(7)},
		"f2": {"onA": map[string]any{"token": "t"}},
		"f3": {"onB": "b"},
	}
	commit(t, db, "f1", engine.StaticChange{Key: "plain", After: "p"}, engine.StaticChange{Key: "n", After: int64(7)})
	commit(t, NewSealedStore(db, keyring(t, a)), "f2", engine.StaticChange{Key: "onA", After: map[string]any{"token": "t"}})
	commit(t, NewSealedStore(db, keyring(t, b)), "f3", engine.StaticChange{Key: "onB", After: "b"})
	commit(t, db, "f1", engine.StaticChange{Key: "n", After: int64(7)}) // version 2
	versions := map[string]int64{"plain": 1, "n": 2, "onA": 1, "onB": 1}

	check := func(t *testing.T, s *SealedStore, wantPrefix string) {
		t.Helper()
		for flow, want := range values {
			got, err := s.LoadStatic(ctx, flow)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range want {
				if !reflect.DeepEqual(got[k].Value, v) || got[k].Version != versions[k] {
					t.Errorf("%s.%s = %#v, want %#v at version %d", flow, k, got[k], v, versions[k])
				}
				if raw := rawStatic(t, db, flow, k); !strings.HasPrefix(raw, wantPrefix) {
					t.Errorf("%s.%s stored %.40q, want it to start %q", flow, k, raw, wantPrefix)
				}
			}
		}
	}

	t.Run("a missing key fails and writes nothing", func(t *testing.T) {
		before := rawStatic(t, db, "f1", "plain")
		_, err := NewSealedStore(db, keyring(t, b)).Rotate(ctx)
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"f2"`) {
			t.Fatalf("Rotate = %v, want ErrUnknownKey naming f2", err)
		}
		if rawStatic(t, db, "f1", "plain") != before {
			t.Error("a failed rotation wrote")
		}
	})
	t.Run("to key B", func(t *testing.T) {
		st, err := NewSealedStore(db, keyring(t, b, a)).Rotate(ctx)
		if want := (RotateStats{Encrypted: 2, Resealed: 1, Unchanged: 1}); err != nil || st != want {
			t.Fatalf("Rotate = %+v, %v; want %+v", st, err, want)
		}
		check(t, NewSealedStore(db, keyring(t, b)), `"flowd:enc:v1:`+KeyID(b)+":")
	})
	t.Run("again does nothing", func(t *testing.T) {
		st, err := NewSealedStore(db, keyring(t, b, a)).Rotate(ctx)
		if want := (RotateStats{Unchanged: 4}); err != nil || st != want {
			t.Fatalf("Rotate = %+v, %v; want %+v", st, err, want)
		}
	})
	t.Run("decrypt", func(t *testing.T) {
		st, err := NewSealedStore(db, keyring(t, nil, b)).Rotate(ctx)
		if want := (RotateStats{Decrypted: 4}); err != nil || st != want {
			t.Fatalf("Rotate = %+v, %v; want %+v", st, err, want)
		}
		check(t, NewSealedStore(db, nil), "")
		if raw := rawStatic(t, db, "f2", "onA"); raw != `{"token":"t"}` {
			t.Errorf("decrypted value stored as %q", raw)
		}
	})
}

func TestSurvey(t *testing.T) {
	ctx := context.Background()
	a, b, c := newKey(t), newKey(t), newKey(t)
	db := openTest(t)
	commit(t, db, "f", engine.StaticChange{Key: "plain", After: int64(1)})
	commit(t, NewSealedStore(db, keyring(t, a)), "f", engine.StaticChange{Key: "a1", After: 1}, engine.StaticChange{Key: "a2", After: 2})
	commit(t, NewSealedStore(db, keyring(t, b)), "f", engine.StaticChange{Key: "b", After: 1})
	commit(t, NewSealedStore(db, keyring(t, c)), "g", engine.StaticChange{Key: "c", After: 1})
	commit(t, db, "f", engine.StaticChange{Key: "gone", After: 1}, engine.StaticChange{Key: "gone", Deleted: true})

	sv, err := NewSealedStore(db, keyring(t, a, b)).Survey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sv.Plain != 1 || sv.Current != 2 || sv.Old != 1 || len(sv.Unreadable) != 1 {
		t.Fatalf("survey = %+v", sv)
	}
	if e := sv.Unreadable[0]; !errors.Is(e, ErrUnknownKey) || !strings.Contains(e.Error(), `flow "g": key "c"`) || !strings.Contains(e.Error(), KeyID(c)) {
		t.Errorf("unreadable: %v", e)
	}
	sv, err = NewSealedStore(db, nil).Survey(ctx)
	if err != nil || sv.Plain != 1 || sv.Current != 0 || len(sv.Unreadable) != 4 {
		t.Errorf("survey without keys = %+v, %v", sv, err)
	}
}

// BenchmarkRotate re-seals 1000 token-sized values from one key to another, as rotate-key
// does; the time is how long the rotation holds the write lock.
func BenchmarkRotate(b *testing.B) {
	ctx := context.Background()
	db := openTest(b)
	ka, kb := newKey(b), newKey(b)
	onA := NewSealedStore(db, keyring(b, ka))
	const flows, keys = 100, 10
	for f := range flows {
		changes := make([]engine.StaticChange, keys)
		for k := range changes {
			changes[k] = engine.StaticChange{Key: fmt.Sprintf("k%d", k), After: strings.Repeat("t", 64)}
		}
		if err := onA.CommitStatic(ctx, &engine.StaticCommit{FlowID: fmt.Sprintf("f%03d", f), Changes: changes}); err != nil {
			b.Fatal(err)
		}
	}
	there, back := NewSealedStore(db, keyring(b, kb, ka)), NewSealedStore(db, keyring(b, ka, kb))
	for i := 0; b.Loop(); i++ {
		s := there
		if i%2 == 1 {
			s = back
		}
		st, err := s.Rotate(ctx)
		if err != nil || st.Resealed != flows*keys {
			b.Fatalf("Rotate = %+v, %v", st, err)
		}
	}
}
