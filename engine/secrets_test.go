package engine

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeSecretsFile writes a secrets file with the given mode and returns its path.
func writeSecretsFile(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is filtered by the umask
		t.Fatal(err)
	}
	return path
}

func TestLoadSecrets(t *testing.T) {
	path := writeSecretsFile(t, strings.Join([]string{
		"# OAuth2 client of the partner API",
		"CLIENT_ID=partner-app",
		"",
		"  CLIENT_SECRET = s3cr3t=with=equals ",
		`QUOTED="a value with spaces"`,
		"SINGLE='x#y'",
		"FROM_BOTH=file\r",
	}, "\n"), 0o600)
	environ := []string{
		"HOME=/root",
		"FLOWD_SECRET_API_KEY=k3y",
		"FLOWD_SECRET_FROM_BOTH=environment",
		"FLOWD_SECRET_EMPTY=", // empty reads as unset
		"FLOWD_SECRETS_FILE=" + path,
	}
	s, err := LoadSecrets(environ, path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CLIENT_ID":     "partner-app",
		"CLIENT_SECRET": " s3cr3t=with=equals ", // the value is taken as written
		"QUOTED":        "a value with spaces",
		"SINGLE":        "x#y",
		"FROM_BOTH":     "environment",
		"API_KEY":       "k3y",
	}
	if got := s.Values(); !reflect.DeepEqual(got, want) {
		t.Errorf("Values() = %q\nwant %q", got, want)
	}
	if got := s.Names(); !reflect.DeepEqual(got, []string{"API_KEY", "CLIENT_ID", "CLIENT_SECRET", "FROM_BOTH", "QUOTED", "SINGLE"}) {
		t.Errorf("Names() = %q", got)
	}
	if _, ok := s.Secret("EMPTY"); ok {
		t.Error("an empty environment variable gave a secret")
	}
	if v, ok := s.Secret("CLIENT_ID"); !ok || v != "partner-app" {
		t.Errorf("Secret(CLIENT_ID) = %q, %v", v, ok)
	}

	t.Run("environment only", func(t *testing.T) {
		s, err := LoadSecrets([]string{"FLOWD_SECRET_A=1", "OTHER=2"}, "")
		if err != nil || !reflect.DeepEqual(s.Values(), map[string]string{"A": "1"}) {
			t.Fatalf("%v %v", s.Values(), err)
		}
	})
	t.Run("bad name in the environment", func(t *testing.T) {
		_, err := LoadSecrets([]string{"FLOWD_SECRET_9LIVES=x", "FLOWD_SECRET_A-B=top-secret-value"}, "")
		if err == nil || !strings.Contains(err.Error(), "FLOWD_SECRET_9LIVES: secret name \"9LIVES\"") ||
			!strings.Contains(err.Error(), "FLOWD_SECRET_A-B") || strings.Contains(err.Error(), "top-secret-value") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("defaults fill what is missing", func(t *testing.T) {
		d, err := s.WithDefaults(map[string]string{"CLIENT_ID": "demo", "NEW": "demo-new"})
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := d.Secret("CLIENT_ID"); v != "partner-app" {
			t.Errorf("a default replaced a configured secret: %q", v)
		}
		if v, _ := d.Secret("NEW"); v != "demo-new" {
			t.Errorf("NEW = %q", v)
		}
		if _, ok := s.Secret("NEW"); ok {
			t.Error("WithDefaults changed the original store")
		}
	})
	t.Run("nil store", func(t *testing.T) {
		var s *SecretStore
		if _, ok := s.Secret("A"); ok || s.Names() != nil || len(s.Values()) != 0 {
			t.Error("a nil store has secrets")
		}
	})
}

func TestReadSecretsFilePermissions(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o640, false},
		{0o644, false},
		{0o604, false},
		{0o620, false},
		{0o666, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			path := writeSecretsFile(t, "A=value\n", tt.mode)
			_, err := ReadSecretsFile(path)
			if tt.ok {
				if err != nil {
					t.Fatalf("mode %04o refused: %v", tt.mode, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "it must be for its owner only (chmod 600") {
				t.Fatalf("mode %04o: err = %v", tt.mode, err)
			}
		})
	}
	t.Run("a directory", func(t *testing.T) {
		if _, err := ReadSecretsFile(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := ReadSecretsFile(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		path := writeSecretsFile(t, "A="+strings.Repeat("x", maxSecretsFileBytes)+"\n", 0o600)
		if _, err := ReadSecretsFile(path); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestReadSecretsFileBadLines(t *testing.T) {
	path := writeSecretsFile(t, strings.Join([]string{
		"GOOD=fine-value",
		"no separator here",
		"BAD-NAME=value-one",
		"1ST=value-two",
		"EMPTY=",
		`EMPTY_QUOTES=""`,
		"GOOD=another-value",
		"=value-three",
	}, "\n"), 0o600)
	_, err := ReadSecretsFile(path)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		path + ":2: want NAME=value",
		path + `:3: secret name "BAD-NAME": want letters, digits and underscores`,
		path + `:4: secret name "1ST"`,
		path + ":5: secret EMPTY has an empty value",
		path + ":6: secret EMPTY_QUOTES has an empty value",
		path + ":7: secret GOOD is also set on line 1",
		path + ":8: secret name is empty",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	for _, v := range []string{"fine-value", "value-one", "value-two", "another-value", "value-three"} {
		if strings.Contains(msg, v) {
			t.Errorf("the error quotes a value %q:\n%s", v, msg)
		}
	}
}

func TestCheckSecretName(t *testing.T) {
	for _, ok := range []string{"A", "client_secret", "_X", "API_KEY_2"} {
		if err := CheckSecretName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "2FA", "a-b", "a.b", "a b", "Ä"} {
		if CheckSecretName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSecretsInExpressions(t *testing.T) {
	env := &Env{Secrets: map[string]any{"CLIENT_SECRET": "s3cr3t", "A": "1"}}
	tests := []struct {
		src  string
		want any
	}{
		{"{{ $secrets.CLIENT_SECRET }}", "s3cr3t"},
		{`{{ $secrets["CLIENT_SECRET"] }}`, "s3cr3t"},
		{"Basic {{ $secrets.A }}:{{ $secrets.CLIENT_SECRET }}", "Basic 1:s3cr3t"},
		{"{{ $secrets.MISSING ?? 'none' }}", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tmpl, err := CompileTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := tmpl.Eval(env); err != nil || got != tt.want {
				t.Errorf("= %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestLoadChecksSecrets(t *testing.T) {
	src := `{"nodes": [
  {"name": "t", "type": "trigger"},
  {"name": "s", "type": "split", "parameters": {"cond": "{{ $secrets.CLIENT_SECRT == 'x' }}"}},
  {"name": "e", "type": "emit", "parameters": {"items": [{"a": "{{ $secrets.API_KEY }}", "b": "{{ $secrets.CLIENT_ID }}"}]}}
], "connections": {"t": ["s"], "s": {"true": ["e"]}}}`
	store, err := NewSecretStore(map[string]string{"CLIENT_SECRET": "x", "CLIENT_ID": "y"})
	if err != nil {
		t.Fatal(err)
	}
	l := &Loader{Registry: testRegistry(t), Secrets: store}
	_, probs := l.Load("test.json", []byte(src))
	got := probs.Error()
	want := []string{
		`test.json:3:70: node "s": parameters.cond: $secrets.CLIENT_SECRT: no such secret (did you mean "CLIENT_SECRET"?); set FLOWD_SECRET_CLIENT_SECRT or add CLIENT_SECRT=… to the secrets file`,
		`test.json:4:77: node "e": parameters.items[0].a: $secrets.API_KEY: no such secret; set FLOWD_SECRET_API_KEY`,
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack\n%s\ngot:\n%s", w, got)
		}
	}
	if len(probs) != 2 {
		t.Errorf("%d problems, want 2:\n%s", len(probs), got)
	}

	// Without a store the names are only checked for form: flowd validate loads the flow.
	f, probs := (&Loader{Registry: testRegistry(t)}).Load("test.json", []byte(src))
	if f == nil {
		t.Fatalf("no store: %v", probs)
	}
	if got := f.SecretNames(); !reflect.DeepEqual(got, []string{"API_KEY", "CLIENT_ID", "CLIENT_SECRT"}) {
		t.Errorf("SecretNames() = %q", got)
	}
}

func TestEnvHidesFlowdSecrets(t *testing.T) {
	env := map[string]string{
		"TOKEN_URL":              "https://auth.example.com/token",
		"FLOWD_SECRET_A":         "s",
		"FLOWD_SECRETS_FILE":     "/etc/flowd/secrets",
		"FLOWD_AUTH_TOKEN":       "t",
		"FLOWD_ENCRYPTION_KEY":   "k",
		"FLOWD_ENCRYPTION_KEY_2": "k2",
		"FLOWD_DB":               "data/flowd.db",
	}
	got := envMap(env)
	want := map[string]any{"TOKEN_URL": "https://auth.example.com/token", "FLOWD_DB": "data/flowd.db"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("$env = %v, want %v", got, want)
	}
	fromProcess := environMap([]string{"FLOWD_SECRET_A=s", "FLOWD_AUTH_USER=u", "PATH=/bin", "EMPTY="})
	if !reflect.DeepEqual(fromProcess, map[string]any{"PATH": "/bin"}) {
		t.Errorf("$env from the process environment = %v", fromProcess)
	}
	// Through a run, as a flow sees it.
	n, err := (&Loader{Registry: testRegistry(t)}).LoadNode("split", `{"cond": "{{ $env.FLOWD_SECRET_A == nil && $env.TOKEN_URL != nil }}"}`)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ExecNode(context.Background(), n, []Item{{}}, nil, WithEnv(env))
	if err != nil || len(res.Ports[0]) != 1 {
		t.Fatalf("$env shows a hidden variable: %v %+v", err, res)
	}
}
