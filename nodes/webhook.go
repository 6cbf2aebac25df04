package nodes

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/engine"
)

// Webhook is a built webhook trigger: flowd serve routes /webhook/{Path} to the flow. Its item
// is {"headers", "params", "query", "body"}.
type Webhook struct {
	// Path is the path below /webhook/, without leading or trailing slashes. Segments written
	// ":name" match any one segment and reach the item as params.name.
	Path    string
	Methods []string // upper case, sorted
	// ResponseMode is "onReceived" (answer at once with the run id) or "lastNode" (answer
	// when the run ends with the last node's output).
	ResponseMode string
	// ResponseData, for lastNode: "firstEntryJson" (the first item), "allEntries" (every
	// item, as a list) or "noData" (an empty body).
	ResponseData    string
	ResponseCode    int
	ResponseHeaders map[string]string
	// Auth is what a request must prove before a run starts; its Type is AuthNone when
	// anyone may call the webhook.
	Auth WebhookAuth
	// RateLimit, when not nil, bounds how often the webhook starts runs.
	RateLimit *RateLimit
}

// Webhook authentication types: the values of the authentication parameter.
const (
	AuthNone   = "none"
	AuthHeader = "headerAuth" // a header holds a token
	AuthBasic  = "basicAuth"  // HTTP basic authentication
	AuthHMAC   = "hmac"       // an HMAC-SHA256 signature of the timestamp and the raw body
)

// WebhookAuth says how a webhook's requests authenticate. The flow names the secret; its
// value comes from the server's engine.Secrets when a request arrives, never from the flow
// file.
type WebhookAuth struct {
	Type string // AuthNone, AuthHeader, AuthBasic or AuthHMAC
	// Secret is the name of the secret holding the token (AuthHeader), the password
	// (AuthBasic) or the HMAC key (AuthHMAC); empty for AuthNone.
	Secret string
	// Header (AuthHeader) is the canonical name of the header holding the token. When it is
	// Authorization, "Bearer <token>" is accepted as well as the bare token.
	Header string
	User   string // AuthBasic: the user name, in the clear
	// SignatureHeader and TimestampHeader (AuthHMAC) are canonical header names; Tolerance is
	// how far the timestamp may be from the server's clock, either way.
	SignatureHeader string
	TimestampHeader string
	Tolerance       time.Duration
}

// RateLimit is a token bucket: Requests runs may start at once, and the bucket refills evenly
// at Requests per Per.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// String gives the limit as the rateLimit parameter writes it, in its shortest form: "60/1m".
func (l RateLimit) String() string {
	per := l.Per.String()
	if strings.HasSuffix(per, "m0s") {
		per = per[:len(per)-2]
	}
	if strings.HasSuffix(per, "h0m") {
		per = per[:len(per)-2]
	}
	return fmt.Sprintf("%d/%s", l.Requests, per)
}

// Run emits the trigger item.
func (w *Webhook) Run(ctx context.Context, in *engine.Input, out *engine.Output) error {
	return passThrough(ctx, in, out)
}

// Params returns the names of the path's ":name" segments, in order.
func (w *Webhook) Params() []string {
	var out []string
	for _, s := range strings.Split(w.Path, "/") {
		if strings.HasPrefix(s, ":") {
			out = append(out, s[1:])
		}
	}
	return out
}

var (
	// secretName is what a secret's name looks like (an environment variable's name), so
	// that a token pasted where its name belongs is likely to be refused.
	secretName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	webhookSegment = regexp.MustCompile(`^(:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9._~-]+)$`)
	webhookMethods = []string{
		http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead,
	}
)

func webhookType() *engine.NodeType {
	return &engine.NodeType{
		Name: "webhook",
		Doc: "Starts a run for each HTTP request to /webhook/{path}. " +
			"With `authentication`, a request that fails it gets 401 (no credentials) or 403 (wrong ones) and starts no run; " +
			"`secret` names the credential, whose value flowd takes from its secrets. " +
			"`headerAuth`: the header holds the secret (Authorization may also hold `Bearer ` + the secret). " +
			"`basicAuth`: `user`, and the secret as the password. " +
			"`hmac`: the sender puts the unix time in seconds in the timestamp header, and `sha256=` + the hex of " +
			"HMAC-SHA256(key: the secret, message: timestamp + `.` + the raw body) in the signature header; " +
			"a timestamp further than `tolerance` from flowd's clock, either way, is refused, so a captured request cannot be replayed later. " +
			"With `rateLimit`, requests over the limit get 429 with Retry-After and start no run.",
		Trigger: true,
		Params: []engine.ParamSpec{
			{Name: "path", Kind: engine.KindString, Required: true, Doc: `Path below /webhook/; ":name" segments become params.name.`},
			{Name: "httpMethod", Kind: engine.KindAny, Default: "GET", Doc: "Method or list of methods: GET, POST, PUT, PATCH, DELETE, HEAD."},
			{Name: "responseMode", Kind: engine.KindString, Default: "onReceived", Enum: []string{"onReceived", "lastNode"}, Doc: "onReceived: answer at once with the run id; lastNode: answer with the last node's output."},
			{Name: "responseData", Kind: engine.KindString, Default: "firstEntryJson", Enum: []string{"firstEntryJson", "allEntries", "noData"}, Doc: "With lastNode: the first item, all items as a list, or no body."},
			{Name: "responseCode", Kind: engine.KindNumber, Default: int64(200), Doc: "HTTP status of a successful response."},
			{Name: "responseHeaders", Kind: engine.KindObject, Doc: "Extra response headers, name: value."},
			{Name: "authentication", Kind: engine.KindString, Default: AuthNone, Enum: []string{AuthNone, AuthHeader, AuthBasic, AuthHMAC}, Doc: "What a request must prove before a run starts: nothing, a header token, basic auth or an HMAC-SHA256 signature."},
			{Name: "secret", Kind: engine.KindString, Doc: `With authentication: the NAME of the secret holding the token, password or HMAC key, such as "WEBHOOK_TOKEN" (never the value).`},
			{Name: "headerName", Kind: engine.KindString, Default: "Authorization", Doc: "headerAuth: the header holding the token."},
			{Name: "user", Kind: engine.KindString, Doc: "basicAuth: the user name (required)."},
			{Name: "signatureHeader", Kind: engine.KindString, Default: "X-Flowd-Signature", Doc: "hmac: the header holding `sha256=` and the signature in hex."},
			{Name: "timestampHeader", Kind: engine.KindString, Default: "X-Flowd-Timestamp", Doc: "hmac: the header holding the unix time in seconds that was signed."},
			{Name: "tolerance", Kind: engine.KindDuration, Default: "5m", Doc: "hmac: how far the timestamp may be from the server's clock, either way; at least 1s."},
			{Name: "rateLimit", Kind: engine.KindString, Doc: `Runs this webhook may start: "60/m" is 60 at once, refilled at one a second; units s, m, h, d or a duration ("5/10s").`},
		},
		New: newWebhook,
	}
}

func newWebhook(cfg *engine.NodeConfig) (engine.Node, error) {
	p := cfg.Params
	w := &Webhook{
		Path:         strings.Trim(p.String("path"), "/"),
		ResponseMode: p.String("responseMode"),
		ResponseData: p.String("responseData"),
		ResponseCode: p.Int("responseCode"),
	}
	if p.Has("path") {
		if w.Path == "" {
			p.Errorf("path", "must not be empty")
		}
		seen := map[string]bool{}
		for _, seg := range strings.Split(w.Path, "/") {
			if !webhookSegment.MatchString(seg) || seg == "." || seg == ".." {
				p.Errorf("path", "segment %q: use letters, digits and . _ ~ -, or :name for a parameter", seg)
				continue
			}
			if strings.HasPrefix(seg, ":") {
				if seen[seg] {
					p.Errorf("path", "parameter %s appears twice", seg)
				}
				seen[seg] = true
			}
		}
	}
	for _, m := range p.Strings("httpMethod") {
		m = strings.ToUpper(m)
		if !slices.Contains(webhookMethods, m) {
			p.Errorf("httpMethod", "%q is not one of %s", m, strings.Join(webhookMethods, ", "))
			continue
		}
		if !slices.Contains(w.Methods, m) {
			w.Methods = append(w.Methods, m)
		}
	}
	if p.Has("httpMethod") && len(w.Methods) == 0 {
		p.Errorf("httpMethod", "name at least one method")
	}
	slices.Sort(w.Methods)
	if w.ResponseCode < 200 || w.ResponseCode > 599 {
		p.Errorf("responseCode", "want an HTTP status from 200 to 599, got %d", w.ResponseCode)
	}
	if h := p.Object("responseHeaders"); h != nil {
		w.ResponseHeaders = map[string]string{}
		for _, k := range h.Keys() {
			w.ResponseHeaders[k] = h.String(k)
		}
	}
	w.Auth = webhookAuth(p)
	if p.Has("rateLimit") {
		if l, err := ParseRateLimit(p.String("rateLimit")); err != nil {
			p.Errorf("rateLimit", "%v", err)
		} else {
			w.RateLimit = &l
		}
	}
	return w, nil
}

// authParams maps each authentication parameter to the one type it applies to.
var authParams = []struct{ name, typ string }{
	{"headerName", AuthHeader},
	{"user", AuthBasic},
	{"signatureHeader", AuthHMAC},
	{"timestampHeader", AuthHMAC},
	{"tolerance", AuthHMAC},
}

// webhookAuth reads the authentication parameters; a parameter given for another type, or a
// secret's name missing or malformed, is a problem.
func webhookAuth(p *engine.Params) WebhookAuth {
	a := WebhookAuth{Type: p.String("authentication")}
	for _, ap := range authParams {
		if p.Has(ap.name) && a.Type != ap.typ {
			p.Errorf(ap.name, "applies only with authentication %q", ap.typ)
		}
	}
	switch a.Type {
	case AuthNone:
		if p.Has("secret") {
			p.Errorf("secret", "applies only with authentication %s, %s or %s", AuthHeader, AuthBasic, AuthHMAC)
		}
		return a
	case AuthHeader, AuthBasic, AuthHMAC:
	default:
		return a // not a known type: String has said so
	}

	a.Secret = p.String("secret")
	switch {
	case !p.Has("secret"):
		p.Errorf("secret", "required with authentication %q: the name of a secret such as \"WEBHOOK_TOKEN\"", a.Type)
	case strings.Contains(a.Secret, "{{"):
		p.Errorf("secret", "give the secret's name, such as \"WEBHOOK_TOKEN\", not an expression")
	case !secretName.MatchString(a.Secret):
		p.Errorf("secret", "want a secret's name (letters, digits and _, such as \"WEBHOOK_TOKEN\"); the value itself never goes in a flow file")
	}
	header := func(name string) string {
		h := p.String(name)
		if !validHeaderName(h) {
			p.Errorf(name, "%q is not a valid header name", h)
		}
		return http.CanonicalHeaderKey(h)
	}
	switch a.Type {
	case AuthHeader:
		a.Header = header("headerName")
	case AuthBasic:
		a.User = p.String("user")
		switch {
		case !p.Has("user"):
			p.Errorf("user", "required with authentication %q", AuthBasic)
		case a.User == "":
			p.Errorf("user", "must not be empty")
		case strings.Contains(a.User, ":"):
			p.Errorf("user", "must not contain \":\" (basic auth separates user and password with it)")
		}
	case AuthHMAC:
		a.SignatureHeader = header("signatureHeader")
		a.TimestampHeader = header("timestampHeader")
		if a.SignatureHeader == a.TimestampHeader {
			p.Errorf("timestampHeader", "must differ from signatureHeader")
		}
		a.Tolerance = p.Duration("tolerance")
		if a.Tolerance < time.Second {
			p.Errorf("tolerance", "must be at least 1s (timestamps are whole seconds), got %v", a.Tolerance)
		}
	}
	return a
}

// rateUnits are the units a rate limit may name instead of a duration.
var rateUnits = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "second": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute,
	"h": time.Hour, "hour": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour,
}

// maxRateRequests bounds a rate limit's count, which is also its burst.
const maxRateRequests = 1_000_000

// ParseRateLimit reads "N/unit" (unit s, m, h or d, or spelt out: second, minute, hour, day)
// or "N/duration" ("5/10s"): N requests at once, refilled evenly over the period.
func ParseRateLimit(s string) (RateLimit, error) {
	bad := func(why string) (RateLimit, error) {
		return RateLimit{}, fmt.Errorf("%s in %q; want requests/period such as \"60/m\", \"10/s\" or \"5/10s\"", why, s)
	}
	count, period, ok := strings.Cut(s, "/")
	if !ok {
		return bad("no \"/\"")
	}
	count, period = strings.TrimSpace(count), strings.TrimSpace(period)
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > maxRateRequests {
		return bad(fmt.Sprintf("want a whole number of requests from 1 to %d", maxRateRequests))
	}
	per, ok := rateUnits[period]
	if !ok {
		per, err = time.ParseDuration(period)
		if err != nil {
			return bad(fmt.Sprintf("unknown period %q", period))
		}
		if per < time.Millisecond {
			return bad("the period must be at least 1ms")
		}
	}
	return RateLimit{Requests: n, Per: per}, nil
}
