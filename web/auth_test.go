package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testToken = "0123456789abcdef-test-token"

func TestAuthToken(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{auth: &Auth{Token: testToken}})
	bearer := []string{"Authorization", "Bearer " + testToken}
	tests := []struct {
		name   string
		method string
		path   string
		header []string
		want   int
	}{
		{"API without a credential", "GET", "/api/flows", nil, 401},
		{"API with the bearer token", "GET", "/api/flows", bearer, 200},
		{"API with a wrong token", "GET", "/api/flows", []string{"Authorization", "Bearer nope"}, 401},
		{"API with the token as basic password", "GET", "/api/flows", []string{"Authorization", basic("anyone", testToken)}, 200},
		{"API with a wrong basic password", "GET", "/api/flows", []string{"Authorization", basic("anyone", "nope")}, 401},
		{"UI page without a credential", "GET", "/", []string{"Accept", "text/html"}, 401},
		{"UI page with the token", "GET", "/runs", append([]string{"Accept", "text/html"}, bearer...), 200},
		{"event stream without a credential", "GET", "/events", nil, 401},
		{"metrics without a credential", "GET", "/metrics", nil, 401},
		{"metrics with the token", "GET", "/metrics", bearer, 200},
		{"run without a credential", "POST", "/api/flows/token/run", nil, 401},
		{"health stays open", "GET", "/healthz", nil, 200},
		{"webhooks authenticate per node", "POST", "/webhook/token", []string{"Content-Type", "application/json"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, tt.method, tt.path, "", strings.NewReader("{}"), tt.header...)
			if res.status != tt.want {
				t.Fatalf("status %d, want %d: %s", res.status, tt.want, res.body)
			}
			if tt.want == 401 && res.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without a challenge: a browser would not ask for credentials")
			}
		})
	}
	res := e.do(t, "GET", "/", "", nil, "Accept", "text/html")
	if !strings.Contains(string(res.body), "Log in to flowd") || res.header.Get("Content-Security-Policy") == "" {
		t.Errorf("login page: %s", res.body)
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

func TestAuthUserAndPasswordHash(t *testing.T) {
	hash, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	a := &Auth{User: "ada", PasswordHash: hash}
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, uiFlows, envOptions{auth: a})
	for _, tt := range []struct {
		user, pass string
		want       int
	}{
		{"ada", "correct horse battery", 200},
		{"ada", "correct horse battery", 200}, // remembered: no second bcrypt
		{"ada", "wrong", 401},
		{"bob", "correct horse battery", 401},
		{"ada", "", 401},
	} {
		if res := e.do(t, "GET", "/api/runs", "", nil, "Authorization", basic(tt.user, tt.pass)); res.status != tt.want {
			t.Errorf("%s/%s: status %d, want %d", tt.user, tt.pass, res.status, tt.want)
		}
	}
	if len(a.verified) != 1 {
		t.Errorf("%d remembered credentials, want 1", len(a.verified))
	}
	// A bearer token is no use when only a user is configured.
	if res := e.do(t, "GET", "/api/runs", "", nil, "Authorization", "Bearer "+hash); res.status != 401 {
		t.Errorf("bearer with user auth: status %d", res.status)
	}
}

func TestAuthCheck(t *testing.T) {
	hash, _ := HashPassword("long enough")
	for _, tt := range []struct {
		a       *Auth
		wantErr string
	}{
		{&Auth{Token: testToken}, ""},
		{&Auth{User: "ada", PasswordHash: hash}, ""},
		{&Auth{Token: "short"}, "shorter than 16"},
		{&Auth{User: "ada"}, "without FLOWD_AUTH_PASSWORD_HASH"},
		{&Auth{PasswordHash: hash}, "without FLOWD_AUTH_USER"},
		{&Auth{User: "ada", PasswordHash: "plaintext"}, "not a bcrypt hash"},
	} {
		err := tt.a.Check()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Check(user %q, token %q) = %v, want %q", tt.a.User, tt.a.Token, err, tt.wantErr)
		}
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("a 5-character password was hashed")
	}
}

func TestAPIRefusesCrossSiteChanges(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	e.runWebhook(t, "token")
	res := e.do(t, "DELETE", "/api/flows/token/static", "", nil, "Sec-Fetch-Site", "cross-site")
	if res.status != http.StatusForbidden || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("cross-site DELETE: %d %s", res.status, res.body)
	}
	if st, _ := e.store.Static(t.Context(), "token"); len(st) == 0 {
		t.Fatal("a cross-site request reset static data")
	}
	// Scripts and servers send no Sec-Fetch-Site: they pass.
	if res := e.do(t, "DELETE", "/api/flows/token/static", "", nil); res.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", res.status, res.body)
	}
	if res.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff header on the API")
	}
}

func TestSeparateMetrics(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{separateMetrics: true})
	e.runWebhook(t, "token")
	if res := e.get(t, "/metrics"); res.status != http.StatusNotFound {
		t.Errorf("/metrics on the main router: %d", res.status)
	}
	rec := httptest.NewRecorder()
	e.server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "flowd_") {
		t.Errorf("metrics handler: %d %q", rec.Code, rec.Body.String())
	}
}

func TestStaticAPIMasksSecretsUnlessRevealed(t *testing.T) {
	e := newEnv(t, uiFlows, envOptions{})
	e.runWebhook(t, "token")
	masked := e.get(t, "/api/flows/token/static")
	if masked.status != 200 || strings.Contains(string(masked.body), uiSecret) || !strings.Contains(string(masked.body), `"count":1`) {
		t.Errorf("masked static data: %d %s", masked.status, masked.body)
	}
	revealed := e.get(t, "/api/flows/token/static?reveal=1")
	if !strings.Contains(string(revealed.body), uiSecret) {
		t.Errorf("revealed static data: %s", revealed.body)
	}
}

// With authentication on, /healthz still answers anyone, but names hosts, flows and errors only
// to a caller with credentials.
func TestAuthHealthDetailsNeedCredentials(t *testing.T) {
	cluster := func() ClusterStatus {
		return ClusterStatus{Instance: "web1-812-a7c2", Instances: 2, FlowsDiffer: []FlowDiff{
			{Flow: "secret-flow", Versions: map[string]string{"web1-812-a7c2": "a22ea7b3803a", "web2-4711-k3j9": ""}},
		}}
	}
	health := func(context.Context) error { return errors.New("ping database /srv/flowd/flowd.db: disk I/O error") }
	e := newEnv(t, uiFlows, envOptions{auth: &Auth{Token: testToken}, cluster: cluster, health: health})
	named := []string{"web1-812-a7c2", "secret-flow", "/srv/flowd", "disk I/O"}

	open := e.do(t, "GET", "/healthz", "", nil)
	if open.status != 503 || !strings.Contains(string(open.body), `"degraded"`) || !strings.Contains(string(open.body), `"flowsDifferCount":1`) {
		t.Fatalf("without credentials: %d %s", open.status, open.body)
	}
	for _, s := range named {
		if strings.Contains(string(open.body), s) {
			t.Errorf("without credentials /healthz names %q: %s", s, open.body)
		}
	}

	full := e.do(t, "GET", "/healthz", "", nil, "Authorization", "Bearer "+testToken)
	for _, s := range named {
		if !strings.Contains(string(full.body), s) {
			t.Errorf("with credentials /healthz lacks %q: %s", s, full.body)
		}
	}
}
