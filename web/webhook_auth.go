package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"golang.org/x/time/rate"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// This file is what a webhook request must pass before its run starts: the node's
// authentication, then its rate limit.

// Reasons an authentication failure is counted under (the reason label of
// flowd_webhook_auth_failures_total).
const (
	authMissing = "missing" // no credentials: 401
	authInvalid = "invalid" // wrong or malformed credentials: 403
	authExpired = "expired" // a signed timestamp outside the tolerance: 403
)

// authFailure is why a request was refused. msg goes to the client and the log, so it never
// holds a presented credential, the secret or the body.
type authFailure struct {
	status    int
	reason    string
	msg       string
	challenge string // WWW-Authenticate of a 401, when the scheme has one
}

func missing(challenge, format string, args ...any) *authFailure {
	return &authFailure{status: http.StatusUnauthorized, reason: authMissing, msg: fmt.Sprintf(format, args...), challenge: challenge}
}

func invalid(reason, format string, args ...any) *authFailure {
	return &authFailure{status: http.StatusForbidden, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// authorize checks the request against its webhook's authentication. A refused request is
// answered (401 or 403, or 500 when the secret is not set), counted and logged at warn with
// the flow, node, remote address and reason; then authorize returns false.
func (h *webhooks) authorize(w http.ResponseWriter, r *http.Request, m *WebhookMatch, body []byte) bool {
	a := &m.Webhook.Auth
	if a.Type == nodes.AuthNone || a.Type == "" {
		return true
	}
	reqID := middleware.GetReqID(r.Context())
	secret, ok := h.secret(a.Secret)
	if !ok {
		h.log.Error("webhook secret is not set", "flow", m.Flow.ID, "node", m.Node.Name, "secretName", a.Secret, "request", reqID)
		renderError(w, r, h.log, http.StatusInternalServerError,
			fmt.Sprintf("webhook secret %q is not set; flowd cannot check this webhook's requests", a.Secret))
		return false
	}
	f := verify(r, a, secret, body, time.Now())
	if f == nil {
		return true
	}
	h.metrics.webhookAuthFailure(m.Flow.ID, m.Node.Name, f.reason)
	h.log.Warn("webhook request refused", "flow", m.Flow.ID, "node", m.Node.Name, "remote", r.RemoteAddr,
		"reason", f.msg, "request", reqID)
	if f.challenge != "" {
		w.Header().Set("WWW-Authenticate", f.challenge)
	}
	renderError(w, r, h.log, f.status, "webhook authentication failed: "+f.msg)
	return false
}

// secret returns the named secret's value; an empty value counts as not set, since it would
// let an empty credential in.
func (h *webhooks) secret(name string) (string, bool) {
	if h.secrets == nil {
		return "", false
	}
	v, ok := h.secrets.Secret(name)
	return v, ok && v != ""
}

// verify checks the request's credentials against secret at time now; nil means accepted.
// Every comparison with the secret, or with a value derived from it, takes time independent
// of both values.
func verify(r *http.Request, a *nodes.WebhookAuth, secret string, body []byte, now time.Time) *authFailure {
	switch a.Type {
	case nodes.AuthHeader:
		return verifyHeader(r, a, secret)
	case nodes.AuthBasic:
		return verifyBasic(r, a, secret)
	case nodes.AuthHMAC:
		return verifyHMAC(r, a, secret, body, now)
	}
	// The loader accepts no other type; refuse rather than let a request through.
	return invalid(authInvalid, "unknown authentication type %q", a.Type)
}

// equalSecret reports (as 1) whether got equals want. Comparing SHA-256 digests in constant
// time keeps even a difference in length from showing in the timing.
func equalSecret(got, want string) int {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:])
}

// oneHeader returns the single value of header name: a failure when it is absent (401) or
// given more than once (403).
func oneHeader(r *http.Request, name, challenge string) (string, *authFailure) {
	vals := r.Header.Values(name)
	switch len(vals) {
	case 0:
		return "", missing(challenge, "no %s header", name)
	case 1:
		return vals[0], nil
	}
	return "", invalid(authInvalid, "%s header given %d times", name, len(vals))
}

const bearerChallenge = `Bearer realm="flowd"`

func verifyHeader(r *http.Request, a *nodes.WebhookAuth, secret string) *authFailure {
	challenge := ""
	if a.Header == "Authorization" {
		challenge = bearerChallenge
	}
	v, f := oneHeader(r, a.Header, challenge)
	if f != nil {
		return f
	}
	ok := equalSecret(v, secret)
	if a.Header == "Authorization" {
		if scheme, token, found := strings.Cut(v, " "); found && strings.EqualFold(scheme, "Bearer") {
			ok |= equalSecret(strings.TrimSpace(token), secret)
		}
	}
	if ok != 1 {
		return invalid(authInvalid, "wrong token in the %s header", a.Header)
	}
	return nil
}

const basicChallenge = `Basic realm="flowd", charset="UTF-8"`

func verifyBasic(r *http.Request, a *nodes.WebhookAuth, secret string) *authFailure {
	if len(r.Header.Values("Authorization")) == 0 {
		return missing(basicChallenge, "no basic credentials (Authorization: Basic …)")
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return invalid(authInvalid, "the Authorization header does not hold basic credentials")
	}
	// Both compared, always: which one was wrong does not show.
	if equalSecret(user, a.User)&equalSecret(pass, secret) != 1 {
		return invalid(authInvalid, "wrong user or password")
	}
	return nil
}

// maxTimestampDigits bounds the signed timestamp (unix seconds until the year 33658), so the
// arithmetic on it cannot overflow.
const maxTimestampDigits = 12

// verifyHMAC checks "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)) in the
// signature header against the timestamp header and the raw body, then that the timestamp is
// within the tolerance of now, either way. The signature is checked first, so an
// unauthenticated sender learns nothing about the clock.
func verifyHMAC(r *http.Request, a *nodes.WebhookAuth, secret string, body []byte, now time.Time) *authFailure {
	sig, f := oneHeader(r, a.SignatureHeader, "")
	if f != nil {
		return f
	}
	ts, f := oneHeader(r, a.TimestampHeader, "")
	if f != nil {
		return f
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(got) != sha256.Size {
		return invalid(authInvalid, `the %s header must be "sha256=" and 64 hex digits`, a.SignatureHeader)
	}
	if ts == "" || len(ts) > maxTimestampDigits || strings.Trim(ts, "0123456789") != "" {
		return invalid(authInvalid, "the %s header must be the unix time in whole seconds", a.TimestampHeader)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = io.WriteString(mac, ts)
	_, _ = mac.Write([]byte{'.'})
	_, _ = mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return invalid(authInvalid, "the signature does not match the timestamp and body")
	}
	sec, _ := strconv.ParseInt(ts, 10, 64) // digits only, at most 12 of them
	age := now.Unix() - sec
	limit := int64(a.Tolerance / time.Second)
	switch {
	case age > limit:
		return invalid(authExpired, "the timestamp is %ds old; at most %ds is accepted", age, limit)
	case -age > limit:
		return invalid(authExpired, "the timestamp is %ds in the future; at most %ds is accepted", -age, limit)
	}
	return nil
}

// credentialHeader is the header whose value is the secret itself under a, or "": the
// trigger item leaves it out, so that no run record holds the secret. An HMAC signature
// stays: it reveals nothing about the key.
func credentialHeader(a *nodes.WebhookAuth) string {
	switch a.Type {
	case nodes.AuthHeader:
		return a.Header
	case nodes.AuthBasic:
		return "Authorization"
	}
	return ""
}

// CheckWebhookSecrets returns a problem for each webhook in set whose authentication names a
// secret that secrets (nil: none) does not have: every request to it would get 500. The
// server logs these as warnings when it first sees a flow set; flowd can call it when it
// loads flows too.
func CheckWebhookSecrets(set *FlowSet, secrets engine.Secrets) []error {
	var errs []error
	for _, rt := range set.Routes() {
		a := rt.Webhook.Auth
		if a.Type == nodes.AuthNone || a.Type == "" {
			continue
		}
		v, ok := "", false
		if secrets != nil {
			v, ok = secrets.Secret(a.Secret)
		}
		if !ok || v == "" {
			errs = append(errs, fmt.Errorf("%s: node %q (/webhook/%s): secret %q is not set, so every request to it gets 500",
				rt.Flow.File, rt.Node.Name, rt.Webhook.Path, a.Secret))
		}
	}
	return errs
}

// current returns the live flow set. The first request to see a new set (the first set, or
// one a reload brought) logs the webhooks whose secrets are not set and drops the rate-limit
// buckets of webhooks the set no longer has.
func (h *webhooks) current() *FlowSet {
	set := h.flows.Current()
	if h.seen.Load() != set && h.seen.Swap(set) != set {
		for _, err := range CheckWebhookSecrets(set, h.secrets) {
			h.log.Warn("webhook cannot authenticate requests", "error", err)
		}
		h.limits.keep(set)
	}
	return set
}

// admit takes a token from the webhook's rate-limit bucket. When there is none, it answers
// 429 with Retry-After (whole seconds until the next token) and returns false.
func (h *webhooks) admit(w http.ResponseWriter, r *http.Request, m *WebhookMatch) bool {
	l := m.Webhook.RateLimit
	if l == nil {
		return true
	}
	wait, ok := h.limits.take(m.Flow.ID, m.Node.Name, *l, time.Now())
	if ok {
		return true
	}
	secs := max(int64(math.Ceil(wait.Seconds())), 1)
	h.metrics.webhookRateLimited(m.Flow.ID, m.Node.Name)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	renderError(w, r, h.log, http.StatusTooManyRequests,
		fmt.Sprintf("webhook /webhook/%s is limited to %s requests; try again in %ds", m.Webhook.Path, l, secs))
	return false
}

// limiters holds a token bucket per rate-limited webhook, shared by all requests to it. A
// bucket is keyed by flow id, node name and limit, so a reload that keeps a webhook and its
// limit keeps its bucket (and its count); a changed limit starts full.
type limiters struct {
	mu      sync.Mutex
	buckets map[limitKey]*rate.Limiter
}

type limitKey struct {
	flow, node string
	limit      nodes.RateLimit
}

func newLimiters() *limiters {
	return &limiters{buckets: map[limitKey]*rate.Limiter{}}
}

// take takes one token at now from the webhook's bucket. When the bucket is empty it takes
// none and returns how long until there is one.
func (l *limiters) take(flow, node string, limit nodes.RateLimit, now time.Time) (time.Duration, bool) {
	k := limitKey{flow: flow, node: node, limit: limit}
	l.mu.Lock()
	b, ok := l.buckets[k]
	if !ok {
		b = rate.NewLimiter(rate.Limit(float64(limit.Requests)/limit.Per.Seconds()), limit.Requests)
		l.buckets[k] = b
	}
	l.mu.Unlock()
	res := b.ReserveN(now, 1)
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now) // the refused request does not use up a token
		return wait, false
	}
	return 0, true
}

// keep drops the buckets of webhooks that set does not have with the same limit.
func (l *limiters) keep(set *FlowSet) {
	live := map[limitKey]bool{}
	for _, rt := range set.Routes() {
		if rt.Webhook.RateLimit != nil {
			live[limitKey{flow: rt.Flow.ID, node: rt.Node.Name, limit: *rt.Webhook.RateLimit}] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.buckets {
		if !live[k] {
			delete(l.buckets, k)
		}
	}
}
