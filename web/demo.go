package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DemoTokenIssuer is a small OAuth2 token endpoint for the client credentials grant
// (RFC 6749 §4.4), so that the shipped token flow works with nothing else running. It is for
// demos and tests, never for production: tokens are random and not remembered.
type DemoTokenIssuer struct {
	// ClientID and ClientSecret, when set, are the only credentials accepted; when empty any
	// client is accepted.
	ClientID, ClientSecret string
	// ExpiresIn is the lifetime it announces (default one hour).
	ExpiresIn time.Duration
	issued    atomic.Int64
}

// Issued returns how many tokens have been issued.
func (d *DemoTokenIssuer) Issued() int64 { return d.issued.Load() }

// maxTokenRequestBytes bounds a token request body.
const maxTokenRequestBytes = 16 << 10

// ServeHTTP answers POST requests with a form body grant_type=client_credentials; the client
// authenticates with HTTP basic auth or client_id and client_secret form fields. Errors follow
// RFC 6749 §5.2.
func (d *DemoTokenIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "unreadable form body")
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only grant_type=client_credentials is supported")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if d.ClientID != "" || d.ClientSecret != "" {
		idOK := subtle.ConstantTimeCompare([]byte(id), []byte(d.ClientID)) == 1
		secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(d.ClientSecret)) == 1
		if !idOK || !secretOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="flowd demo"`)
			oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
			return
		}
	}
	lifetime := d.ExpiresIn
	if lifetime <= 0 {
		lifetime = time.Hour
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	d.issued.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": "demo-" + strings.TrimRight(base64.URLEncoding.EncodeToString(b[:]), "="),
		"token_type":   "Bearer",
		"expires_in":   int64(lifetime / time.Second),
	})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
