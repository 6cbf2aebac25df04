package storage

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/flowd/flowd/engine"
)

// Static data encrypted at rest. Each static value is stored as a JSON string
//
//	"flowd:enc:v1:<key id>:<base64(nonce | AES-256-GCM ciphertext and tag)>"
//
// sealing the value's JSON encoding under a random 96-bit nonce, with the flow id and key
// (flowID + "\x00" + key) as additional data, so a sealed value opens only in the place it was
// written. The key id is the first 8 hex digits of SHA-256 of the key: it names the key that
// opens a value without revealing anything about it. Flow ids, keys, versions and update times
// stay in plain text. docs/encryption.md has the threat model and the rotation procedure.

// Errors about sealed static values, tested with errors.Is. They are here rather than in
// errors.go to keep this feature in files of its own while storage is being reworked.
var (
	// ErrUnknownKey means a value is sealed with a key the keyring does not hold.
	ErrUnknownKey = errors.New("sealed with a key that is not configured")
	// ErrSealBroken means a sealed value does not open with its key: it was altered, or moved
	// to another flow or key.
	ErrSealBroken = errors.New("sealed value does not authenticate")
)

const (
	sealPrefix = "flowd:enc:" // every sealed value starts so, whatever its format version
	sealV1     = sealPrefix + "v1:"
	keySize    = 32 // AES-256
	keyIDLen   = 8  // hex digits
)

// ParseKey decodes an encryption key: 32 bytes as standard or URL-safe base64 (padded or not;
// `openssl rand -base64 32` makes one) or as 64 hex digits. Surrounding white space is ignored.
// The error never quotes the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*keySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == keySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d random bytes as base64 (openssl rand -base64 32) or %d hex digits, got %d characters that are neither",
		keySize, 2*keySize, len(s))
}

// KeyID names a key in sealed values and logs: the first 8 hex digits of its SHA-256.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:])[:keyIDLen]
}

// Keyring holds the key that seals static values and older keys that still open them. A
// keyring without a current key writes values in plain text; the zero Keyring (or nil) also
// opens nothing, so it reads only plain values. It is safe for concurrent use.
type Keyring struct {
	current string                 // id of the sealing key; "" writes plain text
	aeads   map[string]cipher.AEAD // by key id, the current key included
}

// NewKeyring builds a keyring that seals with current (nil: plain text) and opens with
// current and every old key. Each key must be 32 bytes; repeating a key is harmless.
func NewKeyring(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	add := func(key []byte) (string, error) {
		if len(key) != keySize {
			return "", fmt.Errorf("key is %d bytes, want %d", len(key), keySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return "", err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return "", err
		}
		id := KeyID(key)
		k.aeads[id] = aead // two different keys sharing an id would take a 1 in 2^32 chance
		return id, nil
	}
	if current != nil {
		id, err := add(current)
		if err != nil {
			return nil, fmt.Errorf("current key: %w", err)
		}
		k.current = id
	}
	for i, key := range old {
		if _, err := add(key); err != nil {
			return nil, fmt.Errorf("old key %d: %w", i+1, err)
		}
	}
	return k, nil
}

// Current is the id of the key new values are sealed with; "" when they are written in plain
// text.
func (k *Keyring) Current() string {
	if k == nil {
		return ""
	}
	return k.current
}

// Opens tells whether the keyring holds the key with this id.
func (k *Keyring) Opens(id string) bool {
	if k == nil {
		return false
	}
	_, ok := k.aeads[id]
	return ok
}

func additionalData(flowID, key string) ([]byte, error) {
	if strings.ContainsRune(flowID, 0) {
		return nil, fmt.Errorf("flow id %q holds a NUL character, which sealed values cannot bind to", flowID)
	}
	return []byte(flowID + "\x00" + key), nil
}

// seal returns the form v is stored in: sealed with the current key, or v itself when the
// keyring has none. A plain string that looks sealed is refused, since it would read back as
// a sealed value.
func (k *Keyring) seal(flowID, key string, v any) (any, error) {
	if k.Current() == "" {
		if s, ok := v.(string); ok && strings.HasPrefix(s, sealPrefix) {
			return nil, fmt.Errorf("a string starting %q can only be stored with encryption on", sealPrefix)
		}
		return v, nil
	}
	plain, err := encodeJSON(v)
	if err != nil {
		return nil, err
	}
	ad, err := additionalData(flowID, key)
	if err != nil {
		return nil, err
	}
	aead := k.aeads[k.current]
	buf := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	buf = aead.Seal(buf, buf, plain, ad)
	return sealV1 + k.current + ":" + base64.StdEncoding.EncodeToString(buf), nil
}

// sealedWith returns the key id a stored value is sealed with, and false for a plain value.
func sealedWith(v any) (string, bool) {
	s, ok := v.(string)
	if !ok || !strings.HasPrefix(s, sealPrefix) {
		return "", false
	}
	rest, ok := strings.CutPrefix(s, sealV1)
	if !ok {
		return "", true // a format this flowd does not know; open says so
	}
	id, _, _ := strings.Cut(rest, ":")
	return id, true
}

// open returns the value a stored value holds: plain values as they are, sealed ones opened
// with the key they name. It never returns a sealed value as if it were plain.
func (k *Keyring) open(flowID, key string, v any) (any, error) {
	s, ok := v.(string)
	if !ok || !strings.HasPrefix(s, sealPrefix) {
		return v, nil
	}
	rest, ok := strings.CutPrefix(s, sealV1)
	if !ok {
		format, _, _ := strings.Cut(strings.TrimPrefix(s, sealPrefix), ":")
		return nil, fmt.Errorf("sealed in format %q, which this flowd does not know (written by a newer one?)", format)
	}
	id, payload, ok := strings.Cut(rest, ":")
	if !ok || len(id) != keyIDLen {
		return nil, fmt.Errorf("%w: malformed sealed value", ErrSealBroken)
	}
	var aead cipher.AEAD
	if k != nil {
		aead = k.aeads[id]
	}
	if aead == nil {
		return nil, fmt.Errorf("%w: key id %s: set FLOWD_ENCRYPTION_KEY to that key, or add it to FLOWD_ENCRYPTION_KEY_OLD while rotating",
			ErrUnknownKey, id)
	}
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: key id %s: malformed sealed value", ErrSealBroken, id)
	}
	ad, err := additionalData(flowID, key)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: key id %s: altered, or copied from another flow or key", ErrSealBroken, id)
	}
	var out any
	if err := decodeJSON(plain, &out); err != nil {
		return nil, fmt.Errorf("opened value: %w", err)
	}
	return out, nil
}

// SealedStore is a store whose static data values are sealed with a keyring: values are
// sealed before they are committed and opened when they are loaded, so the engine, the API
// and run records see plain values and the database holds sealed ones. Everything else — runs,
// schedules — is the embedded Backend's. Values written in plain text (before encryption was
// turned on) are still read; a value sealed with a key the keyring lacks is an error naming
// the flow, key and key id. With a keyring that has no current key, values are written in
// plain text. Safe for concurrent use.
type SealedStore struct {
	Backend
	keys *Keyring
}

var _ engine.Store = (*SealedStore)(nil)

// NewSealedStore wraps s; keys may be nil, which reads and writes plain values only.
func NewSealedStore(s Backend, keys *Keyring) *SealedStore {
	return &SealedStore{Backend: s, keys: keys}
}

// Keys is the keyring values are sealed and opened with.
func (s *SealedStore) Keys() *Keyring { return s.keys }

// LoadStatic is Backend.LoadStatic with every value opened. One value that does not open fails
// the whole load.
func (s *SealedStore) LoadStatic(ctx context.Context, flowID string) (map[string]engine.StaticValue, error) {
	loaded, err := s.Backend.LoadStatic(ctx, flowID)
	if err != nil {
		return nil, err
	}
	for k, sv := range loaded {
		v, err := s.keys.open(flowID, k, sv.Value)
		if err != nil {
			return nil, fmt.Errorf("load static data of flow %q: key %q: %w", flowID, k, err)
		}
		sv.Value = v
		loaded[k] = sv
	}
	return loaded, nil
}

// Static is Backend.Static with every value opened.
func (s *SealedStore) Static(ctx context.Context, flowID string) (map[string]any, error) {
	return StaticValues(s.LoadStatic(ctx, flowID))
}

// CommitStatic is Backend.CommitStatic with each change's After sealed; c is not modified but
// for the Before fields, which get the opened values the commit replaced. Versions and
// conflicts are the Backend's: sealing changes how a value is stored, not when it changed. A Before
// that does not open (a blind write over a value sealed with a missing key) does not undo the
// commit: it reads as a note saying why instead.
func (s *SealedStore) CommitStatic(ctx context.Context, c *engine.StaticCommit) error {
	sealed := *c
	sealed.Changes = make([]engine.StaticChange, len(c.Changes))
	for i, ch := range c.Changes {
		sealed.Changes[i] = engine.StaticChange{Key: ch.Key, Deleted: ch.Deleted}
		if ch.Deleted {
			continue
		}
		v, err := s.keys.seal(c.FlowID, ch.Key, ch.After)
		if err != nil {
			return fmt.Errorf("commit static data of %s: key %q: seal: %w", c.FlowID, ch.Key, err)
		}
		sealed.Changes[i].After = v
	}
	if err := s.Backend.CommitStatic(ctx, &sealed); err != nil {
		return err
	}
	for i, ch := range sealed.Changes {
		before, err := s.keys.open(c.FlowID, ch.Key, ch.Before)
		if err != nil {
			before = fmt.Sprintf("[previous value unreadable: %v]", err)
		}
		c.Changes[i].Before = before
	}
	return nil
}

// StaticSurvey counts the stored static values by how they are kept.
type StaticSurvey struct {
	Plain   int // in plain text
	Current int // sealed with the keyring's current key
	Old     int // sealed with one of its old keys
	// Unreadable holds an error naming flow, key and key id for each value sealed with a key
	// the keyring lacks (or in an unknown format).
	Unreadable []error
}

// Survey reads every stored static value's form, without opening any, so that a server can
// refuse to start with keys that cannot read its data rather than fail run after run.
func (s *SealedStore) Survey(ctx context.Context) (StaticSurvey, error) {
	var sv StaticSurvey
	err := s.EachStatic(ctx, func(flowID, key string, v any) error {
		id, sealed := sealedWith(v)
		switch {
		case !sealed:
			sv.Plain++
		case id == s.keys.Current() && s.keys.Opens(id):
			sv.Current++
		case s.keys.Opens(id):
			sv.Old++
		default:
			_, err := s.keys.open(flowID, key, v)
			sv.Unreadable = append(sv.Unreadable, fmt.Errorf("static data of flow %q: key %q: %w", flowID, key, err))
		}
		return nil
	})
	if err != nil {
		return StaticSurvey{}, fmt.Errorf("survey static data: %w", err)
	}
	return sv, nil
}

// RotateStats says what a rotation did.
type RotateStats struct {
	Encrypted int // plain values sealed
	Resealed  int // values moved from an old key to the current one
	Decrypted int // sealed values written in plain text (keyring without a current key)
	Unchanged int // values already in the wanted form
}

// Rotate brings every stored static value into the keyring's current form in one write
// transaction: sealed with the current key (plain values and values sealed with old keys are
// sealed anew), or plain when the keyring has no current key. Versions and update times are
// kept, since no value changes: a node that read a value before the rotation still commits on
// it, which is right because it read the same plaintext. Any value that does not open fails
// the whole rotation and nothing is written. Safe while other stores on the same file write:
// their commits land wholly before or after the transaction. Running it again does nothing.
func (s *SealedStore) Rotate(ctx context.Context) (RotateStats, error) {
	var st RotateStats
	_, err := s.RewriteStatic(ctx, func(flowID, key string, v any) (any, bool, error) {
		id, sealed := sealedWith(v)
		want := s.keys.Current()
		if (sealed && id == want && want != "") || (!sealed && want == "") {
			st.Unchanged++
			return v, false, nil
		}
		plain, err := s.keys.open(flowID, key, v)
		if err != nil {
			return nil, false, fmt.Errorf("flow %q: key %q: %w", flowID, key, err)
		}
		out, err := s.keys.seal(flowID, key, plain)
		if err != nil {
			return nil, false, fmt.Errorf("flow %q: key %q: %w", flowID, key, err)
		}
		switch {
		case want == "":
			st.Decrypted++
		case sealed:
			st.Resealed++
		default:
			st.Encrypted++
		}
		return out, true, nil
	})
	if err != nil {
		return RotateStats{}, fmt.Errorf("rotate static data keys: %w", err)
	}
	return st, nil
}
