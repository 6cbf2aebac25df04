package redact

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// credentials is a value that renders its secret when printed.
type credentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// lazySecret is a slog.LogValuer that resolves to a secret.
type lazySecret struct{}

func (lazySecret) LogValue() slog.Value { return slog.StringValue("the value is s3cr3t-Value-42") }

func TestHandlerRedactsEveryPartOfALine(t *testing.T) {
	const secret = "s3cr3t-Value-42"
	r := New(nil, map[string]string{"CLIENT_SECRET": secret})
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewTextHandler(&buf, nil), r))

	log.Info("calling with "+secret, "url", "https://x/?k="+secret)
	log.Warn("node failed", "error", fmt.Errorf("item 0: POST https://x: unknown client %q", secret))
	log.Info("headers", "Authorization", "Basic YXBwOnMzY3JldA==", "accessToken", "tok-1", "empty_token", "")
	log.Info("group", slog.Group("req", "client_secret", "abc", "note", "k="+secret), slog.Group("auth", "user", "u"))
	log.With("password", "hunter2", "ctx", secret).WithGroup("g").Info("with", "v", secret)
	log.Info("values", "creds", credentials{User: "u", Password: "pw"}, "lazy", lazySecret{}, "bytes", []byte(secret),
		"text", errors.New("Bearer abc.def"))
	log.Info("plain", "n", 3, "ok", true, "token_type", "Bearer")

	out := buf.String()
	for _, leak := range []string{secret, "YXBwOnMzY3JldA", "tok-1", "abc", "hunter2", "pw\"", "abc.def", "user=u"} {
		if strings.Contains(out, leak) {
			t.Errorf("the log holds %q:\n%s", leak, out)
		}
	}
	for _, want := range []string{
		`msg="calling with [$secrets.CLIENT_SECRET]"`,
		`url="https://x/?k=[$secrets.CLIENT_SECRET]"`,
		`unknown client \"[$secrets.CLIENT_SECRET]\""`,
		"Authorization=" + Mask,
		"accessToken=" + Mask,
		`empty_token=""`, // nothing to hide
		"req.client_secret=" + Mask,
		"auth.user=" + Mask, // a whole group under a sensitive name
		"password=" + Mask,
		"ctx=[$secrets.CLIENT_SECRET]",
		"g.v=[$secrets.CLIENT_SECRET]",
		`creds="map[password:` + Mask + ` user:u]"`,
		`lazy="the value is [$secrets.CLIENT_SECRET]"`,
		"bytes=[$secrets.CLIENT_SECRET]",
		"n=3 ok=true token_type=Bearer",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

func TestHandlerKeepsLevels(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}), nil))
	log.Info("hidden")
	log.Warn("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("levels not kept:\n%s", out)
	}
}
