package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/redact"
	"github.com/flowd/flowd/web"
)

// secretFlags are the flags serve and run share for secrets and redaction.
type secretFlags struct {
	file       string
	redactKeys string
}

func (s *secretFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.file, "secrets-file", os.Getenv("FLOWD_SECRETS_FILE"),
		"`path` of a secrets file, NAME=value lines, mode 0600 (env FLOWD_SECRETS_FILE); FLOWD_SECRET_NAME variables add to it and win")
	fs.StringVar(&s.redactKeys, "redact-keys", os.Getenv("FLOWD_REDACT_KEYS"),
		"comma-separated `patterns`: values under keys containing one are masked in run records, logs and the UI, besides the built-in ones (env FLOWD_REDACT_KEYS)")
}

// demoCredentials are the client credentials of the demo token endpoint. With --demo they
// stand in for $secrets.CLIENT_ID and $secrets.CLIENT_SECRET when those are not set, so the
// token flow works out of the box.
var demoCredentials = map[string]string{"CLIENT_ID": "flowd-demo", "CLIENT_SECRET": "flowd-demo-secret"}

// secrets is what the secret flags give: the store for $secrets and the redactor for run
// records and logs.
type secrets struct {
	store    *engine.SecretStore
	redactor *redact.Redactor
}

// load reads the secrets (adding the demo credentials where missing when demo is set),
// parses the key patterns and makes them the process's rules (redact.SetKeys), so that the
// UI hides what the records and logs hide. A bad pattern is a usage error (usage true).
func (s *secretFlags) load(demo bool) (sec secrets, usage bool, err error) {
	keys, err := redact.NewKeys(redact.ParsePatterns(s.redactKeys)...)
	if err != nil {
		return secrets{}, true, fmt.Errorf("--redact-keys: %w", err)
	}
	store, err := engine.LoadSecrets(os.Environ(), s.file)
	if err != nil {
		return secrets{}, false, err
	}
	if demo {
		if store, err = store.WithDefaults(demoCredentials); err != nil {
			return secrets{}, false, err
		}
	}
	redact.SetKeys(keys)
	return secrets{store: store, redactor: redact.New(keys, store.Values())}, false, nil
}

// logger returns a logger to w whose every line is redacted, and says which secrets are
// configured (by name) and which are too short to be redacted by value.
func (s secrets) logger(w io.Writer) *slog.Logger {
	log := slog.New(redact.NewHandler(newLogger(w).Handler(), s.redactor))
	if names := s.store.Names(); len(names) > 0 {
		log.Info("secrets", "names", strings.Join(names, ","))
	}
	for _, name := range s.redactor.Short() {
		log.Warn("secret is too short to be redacted by value in run records and logs", "name", name, "minLength", redact.MinSecretLen)
	}
	return log
}

// demoIssuer returns the demo token endpoint. With secrets it accepts only the client
// credentials they give the token flow (the demo ones, unless configured), so the demo
// exercises the whole client authentication; without, any client.
func demoIssuer(s engine.Secrets, expiresIn time.Duration) *web.DemoTokenIssuer {
	d := &web.DemoTokenIssuer{ExpiresIn: expiresIn}
	if s != nil {
		d.ClientID, _ = s.Secret("CLIENT_ID")
		d.ClientSecret, _ = s.Secret("CLIENT_SECRET")
	}
	return d
}
