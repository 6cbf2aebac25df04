package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestDemoTokenIssuer(t *testing.T) {
	issuer := &DemoTokenIssuer{ClientID: "app", ClientSecret: "s3cret", ExpiresIn: 90 * time.Second}
	srv := httptest.NewServer(issuer)
	defer srv.Close()

	form := func(v url.Values) string { return v.Encode() }
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		user, pass  string
		wantStatus  int
		wantError   string
	}{
		{"basic auth", "POST", "application/x-www-form-urlencoded", form(url.Values{"grant_type": {"client_credentials"}}), "app", "s3cret", 200, ""},
		{"form credentials", "POST", "application/x-www-form-urlencoded; charset=utf-8", form(url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"s3cret"}}), "", "", 200, ""},
		{"wrong secret", "POST", "application/x-www-form-urlencoded", form(url.Values{"grant_type": {"client_credentials"}}), "app", "nope", 401, "invalid_client"},
		{"no credentials", "POST", "application/x-www-form-urlencoded", form(url.Values{"grant_type": {"client_credentials"}}), "", "", 401, "invalid_client"},
		{"other grant", "POST", "application/x-www-form-urlencoded", form(url.Values{"grant_type": {"password"}}), "app", "s3cret", 400, "unsupported_grant_type"},
		{"JSON body", "POST", "application/json", `{"grant_type": "client_credentials"}`, "app", "s3cret", 400, "invalid_request"},
		{"GET", "GET", "", "", "app", "s3cret", 405, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := issuer.Issued()
			req, err := http.NewRequest(tt.method, srv.URL, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantStatus || res.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d cache %q, body %v", res.StatusCode, res.Header.Get("Cache-Control"), body)
			}
			if tt.wantError != "" {
				if body["error"] != tt.wantError || issuer.Issued() != before {
					t.Fatalf("body %v, issued %d → %d", body, before, issuer.Issued())
				}
				return
			}
			tok, _ := body["access_token"].(string)
			if !strings.HasPrefix(tok, "demo-") || len(tok) < 30 || body["token_type"] != "Bearer" || body["expires_in"] != 90.0 {
				t.Fatalf("token response %v", body)
			}
			if issuer.Issued() != before+1 {
				t.Errorf("issued count %d → %d", before, issuer.Issued())
			}
		})
	}
}

func TestDemoTokenIssuerAcceptsAnyClientWhenUnconfigured(t *testing.T) {
	srv := httptest.NewServer(&DemoTokenIssuer{})
	defer srv.Close()
	res, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != 200 || body["expires_in"] != 3600.0 {
		t.Fatalf("status %d body %v", res.StatusCode, body)
	}
}
