package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/flowd/flowd/storage"
)

// Static data encryption (docs/encryption.md): the keys come from the environment only, as
// flags would show in process listings.
const (
	envKey    = "FLOWD_ENCRYPTION_KEY"
	envOldKey = "FLOWD_ENCRYPTION_KEY_OLD" // comma-separated, for reading during a rotation
)

// envKeys reads the current key (nil when unset) and the old keys from the environment.
// Errors name the variable, never the key.
func envKeys() (current []byte, old [][]byte, err error) {
	if s := os.Getenv(envKey); strings.TrimSpace(s) != "" {
		if current, err = storage.ParseKey(s); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", envKey, err)
		}
	}
	for i, s := range strings.Split(os.Getenv(envOldKey), ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := storage.ParseKey(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%s, key %d: %w", envOldKey, i+1, err)
		}
		old = append(old, k)
	}
	return current, old, nil
}

// sealedStore wraps store so that static data is sealed with the environment's keys. Without
// FLOWD_ENCRYPTION_KEY values are written in plain text, and sealed ones still open with the
// keys in FLOWD_ENCRYPTION_KEY_OLD (how encryption is turned off while serving).
func sealedStore(store storage.Backend) (*storage.SealedStore, error) {
	current, old, err := envKeys()
	if err != nil {
		return nil, fmt.Errorf("static data encryption: %w", err)
	}
	keys, err := storage.NewKeyring(current, old...)
	if err != nil {
		return nil, fmt.Errorf("static data encryption: %w", err)
	}
	return storage.NewSealedStore(store, keys), nil
}

// checkStaticKeys refuses keys that cannot open every stored static value — better than a
// server whose runs fail one by one — and logs how static data is kept (key ids, never keys).
func checkStaticKeys(ctx context.Context, s *storage.SealedStore, logger *slog.Logger) error {
	sv, err := s.Survey(ctx)
	if err != nil {
		return err
	}
	if n := len(sv.Unreadable); n > 0 {
		return fmt.Errorf("%d static data values cannot be opened with the configured keys, the first: %w", n, sv.Unreadable[0])
	}
	id := s.Keys().Current()
	switch {
	case id != "":
		logger.Info("static data is encrypted at rest", "key", id, "sealed", sv.Current, "oldKeys", sv.Old, "plain", sv.Plain)
		if sv.Old+sv.Plain > 0 {
			logger.Warn("some static data is not sealed with the current key yet: run flowd rotate-key", "oldKeys", sv.Old, "plain", sv.Plain)
		}
	case sv.Old > 0:
		logger.Warn("static data is written in plain text; values sealed with "+envOldKey+" still open: run flowd rotate-key --decrypt", "sealed", sv.Old, "plain", sv.Plain)
	default:
		logger.Info("static data is not encrypted (set "+envKey+" to encrypt it)", "plain", sv.Plain)
	}
	return nil
}

// cmdRotateKey brings every static value into the form the environment's keys ask for: sealed
// with FLOWD_ENCRYPTION_KEY, or plain with --decrypt. It may run while flowd serves.
func cmdRotateKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rotate-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr("FLOWD_DB", "data/flowd.db"), "SQLite database `path` or postgres:// URL (env FLOWD_DB)")
	decrypt := fs.Bool("decrypt", false, "write every value in plain text (turning encryption off), opening sealed ones with any configured key")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: flowd rotate-key [--db PATH] [--decrypt]

Re-seals every static data value with %[1]s, opening values sealed with older keys with
%[2]s (comma-separated); plain values are encrypted. One transaction: all or nothing.
It may run while flowd serves: restart the server with the new key in %[1]s and the old one
in %[2]s first. See docs/encryption.md.
`, envKey, envOldKey)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	current, old, err := envKeys()
	if err != nil {
		fmt.Fprintln(stderr, "flowd rotate-key:", err)
		return exitUsage
	}
	if *decrypt {
		if current != nil {
			old = append(old, current)
		}
		current = nil
	} else if current == nil {
		fmt.Fprintf(stderr, "flowd rotate-key: %s is not set: set it to the key to seal with (openssl rand -base64 32), or pass --decrypt to write static data in plain text\n", envKey)
		return exitUsage
	}
	keys, err := storage.NewKeyring(current, old...)
	if err != nil {
		fmt.Fprintln(stderr, "flowd rotate-key:", err)
		return exitUsage
	}
	if _, err := os.Stat(*db); err != nil && !isPostgres(*db) {
		fmt.Fprintln(stderr, "flowd rotate-key: no database:", err) // opening would create an empty one
		return exitProblem
	}
	store, _, err := openBackend(ctx, *db, "")
	if err != nil {
		fmt.Fprintln(stderr, "flowd rotate-key:", err)
		return exitProblem
	}
	st, rotErr := storage.NewSealedStore(store, keys).Rotate(ctx)
	if err := errors.Join(rotErr, store.Close()); err != nil {
		fmt.Fprintln(stderr, "flowd rotate-key:", err)
		return exitProblem
	}
	now := "in plain text"
	if id := keys.Current(); id != "" {
		now = "sealed with key " + id
	}
	fmt.Fprintf(stdout, "static data in %s: %d encrypted, %d re-sealed from old keys, %d decrypted, %d already right; every value is now %s\n",
		*db, st.Encrypted, st.Resealed, st.Decrypted, st.Unchanged, now)
	return exitOK
}
