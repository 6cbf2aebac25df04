package web

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5/middleware"
	"golang.org/x/crypto/bcrypt"
)

// Auth is how the UI, the API and /metrics check who is asking. Webhooks have their own
// per-node authentication; /healthz stays open for load balancers.
//
// With a Token, requests carry "Authorization: Bearer <token>", or basic auth with the token
// as the password (any user name), which is what a browser's own login prompt sends. With a
// User and a bcrypt PasswordHash, requests carry basic auth. Both may be set.
type Auth struct {
	Token        string
	User         string
	PasswordHash string // bcrypt, as `flowd hash-password` or `htpasswd -nbB` print it

	// verified remembers the credentials that passed bcrypt, by their SHA-256, so that a page
	// and its assets and event stream cost one bcrypt comparison, not one each.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]struct{}
}

// maxVerified bounds the remembered credentials; the set is cleared when it is full.
const maxVerified = 64

// Enabled tells whether any credential is configured.
func (a *Auth) Enabled() bool { return a != nil && (a.Token != "" || a.User != "") }

// Check validates the configuration: a user needs a bcrypt hash and vice versa.
func (a *Auth) Check() error {
	switch {
	case a.User != "" && a.PasswordHash == "":
		return errors.New("FLOWD_AUTH_USER is set without FLOWD_AUTH_PASSWORD_HASH")
	case a.User == "" && a.PasswordHash != "":
		return errors.New("FLOWD_AUTH_PASSWORD_HASH is set without FLOWD_AUTH_USER")
	case a.PasswordHash != "":
		if _, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil {
			return fmt.Errorf("FLOWD_AUTH_PASSWORD_HASH is not a bcrypt hash (make one with `flowd hash-password`): %w", err)
		}
	case a.Token != "" && len(a.Token) < 16:
		return errors.New("FLOWD_AUTH_TOKEN is shorter than 16 characters; use a long random token")
	}
	return nil
}

// allows tells whether the request carries a valid credential.
func (a *Auth) allows(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(h, "Bearer "); ok {
		return a.Token != "" && equalSecret(token, a.Token) == 1
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if a.Token != "" && equalSecret(pass, a.Token) == 1 {
		return true
	}
	if a.User == "" || equalSecret(user, a.User) != 1 {
		return false
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	a.mu.Lock()
	_, seen := a.verified[key]
	a.mu.Unlock()
	if seen {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	if a.verified == nil || len(a.verified) >= maxVerified {
		a.verified = map[[sha256.Size]byte]struct{}{}
	}
	a.verified[key] = struct{}{}
	a.mu.Unlock()
	return true
}

// middleware refuses requests without a valid credential: 401 with a Basic challenge, so
// that a browser asks for it, as JSON for the API and as the error page for the UI.
func (a *Auth) middleware(log *slog.Logger, page func(w http.ResponseWriter, r *http.Request)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a.allows(r) {
				next.ServeHTTP(w, r)
				return
			}
			log.Warn("unauthenticated request refused", "method", r.Method, "path", r.URL.Path,
				"remote", r.RemoteAddr, "request", middleware.GetReqID(r.Context()),
				"credential", r.Header.Get("Authorization") != "")
			w.Header().Set("WWW-Authenticate", `Basic realm="flowd", charset="UTF-8"`)
			if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" || !wantsHTML(r) {
				renderError(w, r, log, http.StatusUnauthorized, "authentication required: send a bearer token or basic auth")
				return
			}
			page(w, r)
		})
	}
}

// HashPassword returns the bcrypt hash of a password for FLOWD_AUTH_PASSWORD_HASH.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("the password is shorter than 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}
