package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/web"
)

func TestCheckExposure(t *testing.T) {
	token := &web.Auth{Token: "0123456789abcdef0123"}
	tests := []struct {
		name    string
		cfg     serveConfig
		wantErr string
	}{
		{"loopback without auth", serveConfig{Addr: "127.0.0.1:5678"}, ""},
		{"localhost without auth", serveConfig{Addr: "localhost:5678"}, ""},
		{"IPv6 loopback without auth", serveConfig{Addr: "[::1]:5678"}, ""},
		{"all interfaces without auth", serveConfig{Addr: ":5678"}, "refusing to listen on :5678"},
		{"a LAN address without auth", serveConfig{Addr: "192.168.1.10:5678"}, "refusing to listen"},
		{"a host name without auth", serveConfig{Addr: "flowd.internal:5678"}, "refusing to listen"},
		{"all interfaces with a token", serveConfig{Addr: "0.0.0.0:5678", Auth: token}, ""},
		{"all interfaces, insecure", serveConfig{Addr: "0.0.0.0:5678", Insecure: true}, ""},
		{"public metrics", serveConfig{Addr: "127.0.0.1:5678", MetricsAddr: ":9100", Auth: token}, "refusing to serve metrics"},
		{"bad auth", serveConfig{Addr: "127.0.0.1:5678", Auth: &web.Auth{Token: "short"}}, "shorter than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkExposure(tt.cfg)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkExposure = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestServeRefusesToListenBeyondLoopbackUnprotected(t *testing.T) {
	cmd := exec.Command(flowdBin, "serve", "--addr", "0.0.0.0:0", "--db", filepath.Join(t.TempDir(), "f.db"), "--flows", flowsDir(t, nil))
	cmd.Env = append(cmd.Environ(), "FLOWD_AUTH_TOKEN=")
	out, err := cmd.CombinedOutput()
	ee, ok := errors.AsType[*exec.ExitError](err)
	if !ok || ee.ExitCode() != exitProblem || !strings.Contains(string(out), "without authentication") {
		t.Fatalf("exit %v, output:\n%s", err, out)
	}
}

func TestServeWithAuthToken(t *testing.T) {
	const token = "e2e-token-0123456789abcdef"
	ts := newTokenServer(t, 3600)
	s := startServe(t, flowsDir(t, nil), filepath.Join(t.TempDir(), "flowd.db"),
		[]string{"TOKEN_URL=" + ts.URL, "FLOWD_AUTH_TOKEN=" + token}, "--metrics-addr", "127.0.0.1:0")
	if code := s.call("GET", "/api/flows", "", "", nil); code != 401 {
		t.Errorf("API without the token: %d", code)
	}
	get := func(url, auth string) int {
		t.Helper()
		r, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := get(s.url("/api/flows"), "Bearer "+token); code != 200 {
		t.Errorf("API with the token: %d", code)
	}
	// Webhooks and health stay open; metrics moved to their own listener.
	if code := s.call("POST", "/webhook/token-refresh", "", "", nil); code != 200 {
		t.Errorf("webhook: %d", code)
	}
	if code := get(s.url("/metrics"), "Bearer "+token); code != 404 {
		t.Errorf("/metrics on the main listener: %d", code)
	}
	m := regexp.MustCompile(`msg=metrics url=(\S+)`).FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no metrics URL logged:\n%s", s.log.String())
	}
	if code := get(m[1], ""); code != 200 {
		t.Errorf("metrics listener: %d", code)
	}
	if strings.Contains(s.log.String(), token) {
		t.Error("the auth token is in the log")
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestHashPassword(t *testing.T) {
	cmd := exec.Command(flowdBin, "hash-password")
	cmd.Stdin = strings.NewReader("correct horse battery\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(string(out))), []byte("correct horse battery")); err != nil {
		t.Fatalf("hash %q: %v", out, err)
	}
	cmd = exec.Command(flowdBin, "hash-password")
	cmd.Stdin = strings.NewReader("short\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "shorter than 8") {
		t.Errorf("short password: %v %s", err, out)
	}
}

const signedFlow = `{"id": "signed", "nodes": [
	{"name": "Hook", "type": "webhook", "parameters": {"path": "signed", "httpMethod": "POST",
	 "responseMode": "lastNode", "authentication": "hmac", "secret": "HOOK_KEY"}},
	{"name": "Echo", "type": "code", "parameters": {"return": {"got": "{{ $json.body.n }}"}}}],
 "connections": {"Hook": ["Echo"]}}`

func TestServeSignedWebhook(t *testing.T) {
	const key = "hmac-key-for-the-e2e-test"
	dir := flowsDir(t, map[string]string{"signed.json": signedFlow})
	db := filepath.Join(t.TempDir(), "flowd.db")

	// A webhook whose secret is not configured is refused at start, not at every request.
	cmd := exec.Command(flowdBin, "serve", "--addr", "127.0.0.1:0", "--db", db, "--flows", dir, "--demo")
	cmd.Env = commandEnv(nil)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), `secret "HOOK_KEY" is not set`) {
		t.Fatalf("serve without the webhook's secret: %v\n%s", err, out)
	}

	s := startServe(t, dir, db, []string{"FLOWD_SECRET_HOOK_KEY=" + key}, "--demo")
	send := func(body string, ts int64, sign string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", s.url("/webhook/signed"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Flowd-Timestamp", strconv.FormatInt(ts, 10))
		mac := hmac.New(sha256.New, []byte(sign))
		fmt.Fprintf(mac, "%d.%s", ts, body)
		req.Header.Set("X-Flowd-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	now := time.Now().Unix()
	if code := send(`{"n": 1}`, now, key); code != 200 {
		t.Errorf("signed request: %d", code)
	}
	if code := send(`{"n": 1}`, now, "wrong key"); code != 403 {
		t.Errorf("wrongly signed request: %d", code)
	}
	if code := send(`{"n": 1}`, now-3600, key); code != 403 {
		t.Errorf("replayed request an hour old: %d", code)
	}
	var runs struct{ Runs []engine.Run }
	if code := s.call("GET", "/api/runs?flow=signed", "", "", &runs); code != 200 || len(runs.Runs) != 1 {
		t.Errorf("runs of the signed flow: %d, %d runs; want only the accepted one", code, len(runs.Runs))
	}
	if strings.Contains(s.log.String(), key) {
		t.Error("the webhook key is in the log")
	}
}

func TestServeRefusesPprofBeyondLoopback(t *testing.T) {
	cmd := exec.Command(flowdBin, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "f.db"),
		"--flows", flowsDir(t, nil), "--demo", "--pprof-addr", "0.0.0.0:0")
	cmd.Env = commandEnv(nil)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to serve /debug/pprof on 0.0.0.0:0") {
		t.Fatalf("pprof on all interfaces: %v\n%s", err, out)
	}
}
