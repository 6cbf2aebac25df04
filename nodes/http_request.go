package nodes

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/redact"
)

// Defaults of the httpRequest node.
const (
	httpDefaultTimeout      = 30 * time.Second
	httpDefaultMaxRedirects = 10
	httpDefaultMaxBytes     = 10 << 20
	httpMaxMaxBytes         = 1 << 30 // a response is held in memory
	httpDefaultBackoff      = 500 * time.Millisecond
	httpDefaultMaxBackoff   = 10 * time.Second
	httpUserAgent           = "flowd"
	// httpExcerptBytes bounds how much of a response body an error message quotes.
	httpExcerptBytes = 200
)

var httpMethods = []string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions,
}

func httpRequestType() *engine.NodeType {
	return &engine.NodeType{
		Name:        "httpRequest",
		Doc:         "Sends one HTTP request per input item and outputs the response.",
		SideEffects: true,
		Params: []engine.ParamSpec{
			{Name: "method", Kind: engine.KindString, Default: http.MethodGet, Enum: httpMethods, Doc: "HTTP method."},
			{Name: "url", Kind: engine.KindTemplate, Required: true, Doc: "Absolute http or https URL; may hold expressions."},
			{Name: "query", Kind: engine.KindAny, Doc: "Query parameters appended to the URL: {name: template} or [{name, value}]; a list value repeats the name."},
			{Name: "headers", Kind: engine.KindAny, Doc: "Request headers: {name: template} or [{name, value}]; they override the defaults (User-Agent: flowd, Accept, Content-Type)."},
			{Name: "bodyType", Kind: engine.KindString, Enum: []string{"json", "form", "raw", "none"}, Doc: "How body is sent: json, form (x-www-form-urlencoded), raw or none; default json when body is given, else none."},
			{Name: "body", Kind: engine.KindAny, Doc: "Request body: any JSON value with expressions for json, an object of fields for form, a template for raw."},
			{Name: "contentType", Kind: engine.KindTemplate, Doc: "Content-Type of a raw body; default text/plain."},
			{Name: "auth", Kind: engine.KindObject, Doc: `Authentication: {"type":"basic","user","password"}, {"type":"bearer","token"} or {"type":"header","name","value"}; values are templates.`},
			{Name: "timeout", Kind: engine.KindDuration, Default: httpDefaultTimeout.String(), Doc: "Limit on each try, from connecting to the end of the body; 0 means none beyond the run's."},
			{Name: "followRedirects", Kind: engine.KindBool, Default: true, Doc: "Follow 3xx redirects; when false a 3xx response is the result."},
			{Name: "maxRedirects", Kind: engine.KindNumber, Default: int64(httpDefaultMaxRedirects), Doc: "Redirects followed before the request fails."},
			{Name: "response", Kind: engine.KindObject, Doc: `Response handling: {"format": auto|json|text, "fullResponse": bool, "neverError": bool, "maxBytes": number (default 10 MiB)}.`},
			{Name: "retry", Kind: engine.KindObject, Doc: `Retries on network errors, 429 and 5xx: {"maxTries": n (default 1), "backoff": "500ms", "maxBackoff": "10s"}; Retry-After is honoured.`},
		},
		New: newHTTPRequest,
	}
}

// httpRequest is a built httpRequest node. It is read-only after construction, so one value
// serves concurrent runs.
type httpRequest struct {
	method  string
	url     *engine.Template
	query   []engine.NamedTemplate
	headers []engine.NamedTemplate

	bodyType    string                // json, form, raw or none
	body        *engine.ValueTemplate // json and form
	rawBody     *engine.Template      // raw
	contentType *engine.Template      // raw; nil means text/plain

	auth httpAuth

	timeout      time.Duration // per try; 0 means none
	format       string        // auto, json or text
	fullResponse bool
	neverError   bool
	maxBytes     int64

	maxTries   int
	backoff    time.Duration
	maxBackoff time.Duration

	client *http.Client
}

// httpAuth is the node's authentication; kind "" means none.
type httpAuth struct {
	kind           string // basic, bearer or header
	user, password *engine.Template
	token          *engine.Template
	name           string // header name, canonical
	value          *engine.Template
}

// header returns the request header the authentication travels in, or "".
func (a *httpAuth) header() string {
	switch a.kind {
	case "basic", "bearer":
		return "Authorization"
	case "header":
		return a.name
	}
	return ""
}

func newHTTPRequest(cfg *engine.NodeConfig) (engine.Node, error) {
	p := cfg.Params
	h := &httpRequest{
		method:     p.String("method"),
		url:        p.Template("url"),
		query:      p.TemplateMap("query"),
		headers:    p.TemplateMap("headers"),
		timeout:    p.Duration("timeout"),
		format:     "auto",
		maxBytes:   httpDefaultMaxBytes,
		maxTries:   1,
		backoff:    httpDefaultBackoff,
		maxBackoff: httpDefaultMaxBackoff,
	}
	if h.url != nil {
		checkURLTemplate(p, h.url)
	}
	// An empty name in the list form is already reported as "name: required".
	_, queryObject := p.Value("query").(map[string]any)
	for _, q := range h.query {
		if q.Name == "" && queryObject {
			p.Errorf("query", "a query parameter needs a name")
		}
	}
	_, headersObject := p.Value("headers").(map[string]any)
	for _, hd := range h.headers {
		if (hd.Name != "" || headersObject) && !validHeaderName(hd.Name) {
			p.Errorf("headers", "%q is not a valid header name", hd.Name)
		}
	}
	parseHTTPBody(p, h)
	parseHTTPAuth(p, &h.auth)
	parseHTTPResponse(p, h)
	parseHTTPRetry(p, h)

	followRedirects := p.Bool("followRedirects")
	maxRedirects := httpDefaultMaxRedirects
	if f, ok := wholeNumber(p, "maxRedirects"); ok {
		if f < 0 {
			p.Errorf("maxRedirects", "must not be negative, got %v", f)
		} else {
			maxRedirects = saturatedInt(f)
		}
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	h.client = &http.Client{
		Transport:     transport,
		CheckRedirect: redirectPolicy(followRedirects, maxRedirects, h.auth.header()),
	}
	return h, nil
}

// checkURLTemplate fails at load what can be known about the URL without evaluating it: a
// literal URL must be absolute http or https, and a literal prefix before the first
// expression must not name another scheme.
func checkURLTemplate(p *engine.Params, t *engine.Template) {
	if t.IsConst() {
		s, _ := t.EvalString(nil)
		if _, err := parseHTTPURL(s); err != nil {
			p.Errorf("url", "%v", err)
		}
		return
	}
	// A template with an expression has dropped n8n's leading "=" (=https://host/{{ … }}).
	raw := strings.TrimPrefix(t.Raw(), "=")
	prefix := raw[:strings.Index(raw, "{{")]
	if i := strings.IndexByte(prefix, ':'); i >= 0 {
		if scheme := strings.ToLower(prefix[:i]); scheme != "http" && scheme != "https" {
			p.Errorf("url", "want an absolute http or https URL, not scheme %q", scheme)
		}
	} else if strings.ContainsAny(prefix, "/.?#") {
		p.Errorf("url", "want an absolute http or https URL, got %q", prefix+"…")
	}
}

// parseHTTPURL parses an absolute http or https URL. Its errors never quote user info, the
// query or the fragment, which may carry credentials.
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if _, ok := errors.AsType[url.EscapeError](err); ok {
			// It quotes the escape, which may be in the password or the fragment.
			err = errors.New("a % not followed by two hex digits")
		}
		return nil, fmt.Errorf("invalid URL: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("want an absolute http or https URL, got %q", safeURL(u))
	}
	return u, nil
}

func parseHTTPBody(p *engine.Params, h *httpRequest) {
	h.bodyType = p.String("bodyType")
	hasBody := p.Has("body")
	if h.bodyType == "" {
		h.bodyType = "none"
		if hasBody {
			h.bodyType = "json"
		}
	}
	switch h.bodyType {
	case "json", "form":
		if !hasBody {
			p.Errorf("body", "required with bodyType %s", h.bodyType)
			break
		}
		if h.bodyType == "form" {
			switch v := p.Value("body").(type) {
			case map[string]any:
			case string:
				if t, err := engine.CompileTemplate(v); err == nil && t.IsConst() {
					p.Errorf("body", "a form body is an object of field: value, or an expression giving one")
				}
			default:
				p.Errorf("body", "a form body is an object of field: value, or an expression giving one")
			}
		}
		h.body = p.ValueTemplate("body")
	case "raw":
		if !hasBody {
			p.Errorf("body", "required with bodyType raw")
			break
		}
		h.rawBody = p.Template("body")
	case "none":
		if hasBody {
			p.Errorf("body", "given, but bodyType is none")
		}
	}
	h.contentType = p.Template("contentType")
	if h.contentType != nil && h.bodyType != "raw" {
		p.Errorf("contentType", "applies to bodyType raw only; set a Content-Type header instead")
	}
}

func parseHTTPAuth(p *engine.Params, a *httpAuth) {
	o := p.Object("auth")
	if o == nil {
		return
	}
	if !o.Has("type") {
		o.Errorf("", "type: required (basic, bearer or header)")
	}
	a.kind = o.OneOf("type", "basic", "bearer", "header")
	required := func(name string) *engine.Template {
		t := o.Template(name)
		if !o.Has(name) {
			o.Errorf(name, "required with type %s", a.kind)
		}
		return t
	}
	switch a.kind {
	case "basic":
		a.user = required("user")
		a.password = o.Template("password")
	case "bearer":
		a.token = required("token")
	case "header":
		a.name = http.CanonicalHeaderKey(o.String("name"))
		if !o.Has("name") {
			o.Errorf("name", "required with type header")
		} else if !validHeaderName(a.name) {
			o.Errorf("name", "%q is not a valid header name", a.name)
		}
		a.value = required("value")
	default:
		// The type is missing or wrong (reported above); read the other keys so they are not
		// reported as unknown on top.
		for _, k := range o.Keys() {
			o.Value(k)
		}
		a.kind = ""
	}
}

func parseHTTPResponse(p *engine.Params, h *httpRequest) {
	o := p.Object("response")
	if o == nil {
		return
	}
	if f := o.OneOf("format", "auto", "json", "text"); f != "" {
		h.format = f
	}
	h.fullResponse = o.Bool("fullResponse")
	h.neverError = o.Bool("neverError")
	if f, ok := wholeNumber(o, "maxBytes"); ok {
		switch {
		case f <= 0:
			o.Errorf("maxBytes", "must be positive, got %v", f)
		case f > httpMaxMaxBytes:
			o.Errorf("maxBytes", "must be at most %d (1 GiB), got %v", httpMaxMaxBytes, f)
		default:
			h.maxBytes = int64(f)
		}
	}
}

func parseHTTPRetry(p *engine.Params, h *httpRequest) {
	o := p.Object("retry")
	if o == nil {
		return
	}
	if f, ok := wholeNumber(o, "maxTries"); ok {
		if f < 1 {
			o.Errorf("maxTries", "must be at least 1, got %v", f)
		} else {
			h.maxTries = saturatedInt(f)
		}
	}
	if d := o.Duration("backoff"); o.Has("backoff") {
		h.backoff = d
	}
	if d := o.Duration("maxBackoff"); o.Has("maxBackoff") {
		h.maxBackoff = d
	}
	if h.backoff > h.maxBackoff {
		o.Errorf("backoff", "%s exceeds maxBackoff %s", h.backoff, h.maxBackoff)
	}
}

// wholeNumber reads an optional whole-number parameter as a float64, so range checks see a
// huge value as written (1e19; 1e400 reads as +Inf) rather than wrapped by a conversion to
// int. ok is false when it is absent or a problem was recorded, so range checks do not pile
// onto a kind error.
func wholeNumber(p *engine.Params, name string) (float64, bool) {
	v := p.Value(name) // read even when absent: read keys are the did-you-mean candidates
	if !p.Has(name) {
		return 0, false
	}
	switch v.(type) {
	case int64, float64, json.Number: // json.Number: beyond float64's range
	default:
		p.Float(name) // records the kind problem
		return 0, false
	}
	f := p.Float(name)
	if f != math.Trunc(f) {
		p.Errorf(name, "want a whole number, got %v", f)
		return 0, false
	}
	return f, true
}

// saturatedInt converts a whole, non-negative float64 to int, capping it at math.MaxInt.
func saturatedInt(f float64) int {
	if f >= math.MaxInt {
		return math.MaxInt
	}
	return int(f)
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue reports whether s may be sent as a header value: no control characters
// other than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// errNoRetry marks a failure that another try cannot fix (a redirect policy, say).
type errNoRetry struct{ error }

func (e errNoRetry) Unwrap() error { return e.error }

// redirectPolicy is the client's CheckRedirect. Besides the limits, it drops the node's
// authentication header when a redirect leaves the original host or downgrades to http, as
// Go does for Authorization across domains — but also for custom headers and other ports.
func redirectPolicy(follow bool, max int, authHeader string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) > max {
			return errNoRetry{fmt.Errorf("too many redirects (maxRedirects is %d)", max)}
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return errNoRetry{fmt.Errorf("redirect to unsupported scheme %q", req.URL.Scheme)}
		}
		if authHeader != "" {
			first := via[0].URL
			for _, r := range append(via[1:], req) {
				if r.URL.Host != first.Host || first.Scheme == "https" && r.URL.Scheme != "https" {
					req.Header.Del(authHeader)
					break
				}
			}
		}
		return nil
	}
}

// httpCall is one item's request, ready to send (again).
type httpCall struct {
	method string
	url    *url.URL
	host   string // Host header override, or ""
	header http.Header
	body   []byte // nil means none
	desc   string // "POST https://host/path", safe to show
	// creds are the credentials the request carries, kept out of the node's output and
	// errors: a server that echoes its request (or quotes it in an error) must not put them
	// into the run's data.
	creds sentCredentials
}

// sentCredentials are the credentials one request sends: the authentication header and the
// values of headers, query parameters and form or JSON body fields with sensitive names
// (redact.IsSensitiveKey), as sent and as they appear encoded.
type sentCredentials []string

// add records v in each form given; values shorter than redact.MinSecretLen are left out,
// as they would match by chance.
func (s *sentCredentials) add(forms ...string) {
	for _, v := range forms {
		if len(v) >= redact.MinSecretLen && !slices.Contains(*s, v) {
			*s = append(*s, v)
		}
	}
	// Longest first, so that a credential containing another is replaced whole.
	slices.SortStableFunc(*s, func(a, b string) int { return len(b) - len(a) })
}

// addValue records a value sent under a name (header, query parameter, form field) when the
// name is sensitive.
func (s *sentCredentials) addValue(name, v string) {
	if redact.IsSensitiveKey(name) {
		s.add(v, url.QueryEscape(v))
	}
}

// scrub returns x with every credential replaced by redact.Mask.
func (s sentCredentials) scrub(x string) string {
	for _, c := range s {
		if strings.Contains(x, c) {
			x = strings.ReplaceAll(x, c, redact.Mask)
		}
	}
	return x
}

// scrubValue replaces credentials in the strings (and keys) of a decoded JSON value.
func (s sentCredentials) scrubValue(v any) any {
	switch x := v.(type) {
	case string:
		return s.scrub(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[s.scrub(k)] = s.scrubValue(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = s.scrubValue(e)
		}
		return x
	}
	return v
}

// scrubError returns err, or an error with the same message less the credentials.
func (s sentCredentials) scrubError(err error) error {
	msg := err.Error()
	if clean := s.scrub(msg); clean != msg {
		return errors.New(clean)
	}
	return err
}

// httpResult is a response with its body read.
type httpResult struct {
	status     int
	statusText string
	header     http.Header
	body       []byte
	tooLarge   bool // the body exceeded maxBytes; body holds maxBytes+1 bytes
}

// Run sends one request per item, in order. Per-item problems fail that item and the loop
// goes on; only ctx ending (or static data for expressions failing to load) stops the node
// with an error.
func (h *httpRequest) Run(ctx context.Context, in *engine.Input, out *engine.Output) error {
	for i, item := range in.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		env, err := in.Env(ctx, i)
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		call, err := h.build(env)
		if err != nil {
			out.FailItem(i, item, call.creds.scrubError(err))
			continue
		}
		items, err := h.do(ctx, call)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return fmt.Errorf("item %d: %s: %w", i, call.desc, ctxErr)
			}
			out.FailItem(i, item, call.creds.scrubError(err))
			continue
		}
		if len(call.creds) > 0 {
			for j, it := range items {
				items[j] = call.creds.scrubValue(it).(map[string]any)
			}
		}
		out.Emit(0, items...)
	}
	return nil
}

// build evaluates the item's URL, query, headers, body and authentication. The call comes
// back with the credentials gathered so far even with an error, so the error can be
// scrubbed of them.
func (h *httpRequest) build(env *engine.Env) (*httpCall, error) {
	c := &httpCall{method: h.method, header: http.Header{}}
	s, err := h.url.EvalString(env)
	if err != nil {
		return c, fmt.Errorf("parameters.url: %w", err)
	}
	u, err := parseHTTPURL(s)
	if err != nil {
		return c, fmt.Errorf("parameters.url: %w", err)
	}
	if pw, ok := u.User.Password(); ok {
		c.creds.add(pw, url.QueryEscape(pw))
	}
	for name, vals := range u.Query() {
		for _, v := range vals {
			c.creds.addValue(name, v)
		}
	}
	if len(h.query) > 0 {
		var b strings.Builder
		b.WriteString(u.RawQuery)
		for _, q := range h.query {
			vals, err := textValues(q.Value, env)
			if err != nil {
				return c, fmt.Errorf("parameters.query.%s: %w", q.Name, err)
			}
			for _, v := range vals {
				c.creds.addValue(q.Name, v)
				if b.Len() > 0 {
					b.WriteByte('&')
				}
				b.WriteString(url.QueryEscape(q.Name))
				b.WriteByte('=')
				b.WriteString(url.QueryEscape(v))
			}
		}
		u.RawQuery = b.String()
	}
	c.url, c.desc = u, h.method+" "+safeURL(u)

	c.header.Set("User-Agent", httpUserAgent)
	if h.format == "text" {
		c.header.Set("Accept", "*/*")
	} else {
		c.header.Set("Accept", "application/json, */*;q=0.8")
	}
	if err := h.buildBody(env, c); err != nil {
		return c, err
	}

	seen := map[string]bool{}
	for _, hd := range h.headers {
		vals, err := textValues(hd.Value, env)
		if err != nil {
			return c, fmt.Errorf("parameters.headers.%s: %w", hd.Name, err)
		}
		name := http.CanonicalHeaderKey(hd.Name)
		if !seen[name] {
			seen[name] = true
			c.header.Del(name)
		}
		for _, v := range vals {
			c.creds.addValue(name, v)
			if name == "Authorization" || name == "Proxy-Authorization" {
				c.creds.add(authCredential(v))
			}
			if !validHeaderValue(v) {
				return c, fmt.Errorf("parameters.headers.%s: value holds a line break or control character", hd.Name)
			}
			if name == "Host" {
				c.host = v
				continue
			}
			c.header.Add(name, v)
		}
	}
	return c, h.buildAuth(env, c)
}

func (h *httpRequest) buildBody(env *engine.Env, c *httpCall) error {
	switch h.bodyType {
	case "json":
		v, err := h.body.Eval(env)
		if err != nil {
			return fmt.Errorf("parameters.body: %w", err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("parameters.body: encode JSON: %w", err)
		}
		c.body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		c.header.Set("Content-Type", "application/json")
		if fields, ok := v.(map[string]any); ok {
			for k, fv := range fields {
				if s, ok := fv.(string); ok {
					c.creds.addValue(k, s)
				}
			}
		}
	case "form":
		v, err := h.body.Eval(env)
		if err != nil {
			return fmt.Errorf("parameters.body: %w", err)
		}
		fields, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("parameters.body: a form body must be an object, got %s", engine.JSONKind(v))
		}
		form := url.Values{}
		for k, fv := range fields {
			if list, ok := fv.([]any); ok {
				for _, e := range list {
					form.Add(k, engine.FormatValue(e))
					c.creds.addValue(k, engine.FormatValue(e))
				}
				continue
			}
			form.Add(k, engine.FormatValue(fv))
			c.creds.addValue(k, engine.FormatValue(fv))
		}
		c.body = []byte(form.Encode())
		c.header.Set("Content-Type", "application/x-www-form-urlencoded")
	case "raw":
		s, err := h.rawBody.EvalString(env)
		if err != nil {
			return fmt.Errorf("parameters.body: %w", err)
		}
		c.body = []byte(s)
		ct := "text/plain"
		if h.contentType != nil {
			if ct, err = h.contentType.EvalString(env); err != nil {
				return fmt.Errorf("parameters.contentType: %w", err)
			}
			if !validHeaderValue(ct) {
				return fmt.Errorf("parameters.contentType: value holds a line break or control character")
			}
		}
		if ct != "" {
			c.header.Set("Content-Type", ct)
		}
	}
	return nil
}

// buildAuth sets the authentication header. Its errors name the parameter, never its value.
func (h *httpRequest) buildAuth(env *engine.Env, c *httpCall) error {
	a := &h.auth
	eval := func(name string, t *engine.Template) (string, error) {
		if t == nil {
			return "", nil
		}
		s, err := t.EvalString(env)
		if err != nil {
			// The expression's message may quote the credential it was converting
			// (int($env.TOKEN) fails with "int(<token>)"), so it is left out.
			return "", fmt.Errorf("parameters.auth.%s: expression failed (the message is withheld, as it may quote the credential)", name)
		}
		if !validHeaderValue(s) {
			return "", fmt.Errorf("parameters.auth.%s: value holds a line break or control character", name)
		}
		return s, nil
	}
	switch a.kind {
	case "basic":
		user, err := eval("user", a.user)
		if err != nil {
			return err
		}
		password, err := eval("password", a.password)
		if err != nil {
			return err
		}
		if strings.Contains(user, ":") {
			return errors.New("parameters.auth.user: a basic-auth user name must not contain a colon")
		}
		encoded := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		c.creds.add(password, url.QueryEscape(password), encoded, user+":"+password)
		c.header.Set("Authorization", "Basic "+encoded)
	case "bearer":
		token, err := eval("token", a.token)
		if err != nil {
			return err
		}
		c.creds.add(token, url.QueryEscape(token))
		c.header.Set("Authorization", "Bearer "+token)
	case "header":
		v, err := eval("value", a.value)
		if err != nil {
			return err
		}
		c.creds.add(v, url.QueryEscape(v), authCredential(v))
		c.header.Set(a.name, v)
	}
	return nil
}

// authCredential is the credential of an Authorization header value: what follows the
// scheme ("Bearer abc" gives "abc"), or the whole value when it has no scheme.
func authCredential(v string) string {
	if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
		return strings.TrimSpace(cred)
	}
	return v
}

// do sends the call, with retries, and turns the response into items.
func (h *httpRequest) do(ctx context.Context, c *httpCall) ([]engine.Item, error) {
	for try := 1; ; try++ {
		res, err := h.send(ctx, c)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		retryable := false
		switch {
		case err != nil:
			var nr errNoRetry
			retryable = !errors.As(err, &nr)
		case res.status == http.StatusTooManyRequests || res.status >= 500 && res.status <= 599:
			retryable = true
		}
		if !retryable || try >= h.maxTries {
			return h.finish(c, res, err, try, "")
		}
		wait := h.backoffFor(try)
		if err == nil {
			if ra, ok := retryAfter(res.status, res.header, time.Now()); ok {
				wait = min(ra, h.maxBackoff)
			}
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return h.finish(c, res, err, try, fmt.Sprintf("not retried: waiting %s would pass the deadline", wait.Round(time.Millisecond)))
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// finish converts the last try's outcome into items or an item error.
func (h *httpRequest) finish(c *httpCall, res *httpResult, err error, tries int, note string) ([]engine.Item, error) {
	if err == nil {
		var items []engine.Item
		items, err = h.items(c, res)
		if err == nil {
			return items, nil
		}
	}
	switch {
	case note != "" && tries > 1:
		return nil, fmt.Errorf("%w (%d tries; %s)", err, tries, note)
	case note != "":
		return nil, fmt.Errorf("%w (%s)", err, note)
	case tries > 1:
		return nil, fmt.Errorf("%w (gave up after %d tries)", err, tries)
	}
	return nil, err
}

// send makes one try: the request and a bounded read of the body, under the per-try timeout.
func (h *httpRequest) send(ctx context.Context, c *httpCall) (*httpResult, error) {
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if h.timeout > 0 {
		rctx, cancel = context.WithTimeout(ctx, h.timeout)
	}
	defer cancel()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(rctx, c.method, c.url.String(), body)
	if err != nil {
		return nil, errNoRetry{fmt.Errorf("%s: %w", c.desc, unwrapURLError(err))}
	}
	req.Header = c.header.Clone()
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, h.sendError(ctx, rctx, c, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBytes+1))
	if err != nil {
		return nil, h.sendError(ctx, rctx, c, fmt.Errorf("read response body: %w", err))
	}
	res := &httpResult{
		status:     resp.StatusCode,
		statusText: strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode))),
		header:     resp.Header,
		body:       data,
		tooLarge:   int64(len(data)) > h.maxBytes,
	}
	if res.statusText == "" {
		res.statusText = http.StatusText(resp.StatusCode)
	}
	return res, nil
}

// sendError words a failed try without the URL's query or credentials (Go's *url.Error
// quotes the whole URL).
func (h *httpRequest) sendError(ctx, rctx context.Context, c *httpCall, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if rctx.Err() != nil {
		return fmt.Errorf("%s: timed out after %s", c.desc, h.timeout)
	}
	var nr errNoRetry
	if errors.As(err, &nr) {
		return errNoRetry{fmt.Errorf("%s: %w", c.desc, nr.error)}
	}
	return fmt.Errorf("%s: %w", c.desc, unwrapURLError(err))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// items turns a response into output items as the response settings say.
func (h *httpRequest) items(c *httpCall, res *httpResult) ([]engine.Item, error) {
	if !h.neverError && (res.status < 200 || res.status > 299) {
		msg := fmt.Sprintf("HTTP %d %s from %s", res.status, res.statusText, c.desc)
		if ex := excerpt(res.body); ex != "" {
			msg += ": " + ex
		}
		return nil, errors.New(msg)
	}
	if res.tooLarge {
		return nil, fmt.Errorf("%s: response body exceeds %d bytes", c.desc, h.maxBytes)
	}
	asJSON := h.format == "json" || h.format == "auto" && isJSONContentType(res.header.Get("Content-Type"))
	var body any
	if asJSON {
		v, err := decodeJSONBody(res.body)
		if err != nil {
			return nil, fmt.Errorf("invalid JSON in response (HTTP %d %s from %s): %v: %s", res.status, res.statusText, c.desc, err, excerpt(res.body))
		}
		body = v
	} else {
		body = strings.ToValidUTF8(string(res.body), "\uFFFD")
	}
	if h.fullResponse {
		key := "data"
		if asJSON {
			key = "body"
		}
		return []engine.Item{{
			key:             body,
			"headers":       headerItem(res.header),
			"statusCode":    int64(res.status),
			"statusMessage": res.statusText,
		}}, nil
	}
	if !asJSON {
		return []engine.Item{{"data": body}}, nil
	}
	switch v := body.(type) {
	case map[string]any:
		return []engine.Item{v}, nil
	case []any:
		items := make([]engine.Item, 0, len(v))
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				items = append(items, m)
			} else {
				items = append(items, engine.Item{"value": e})
			}
		}
		return items, nil
	case nil:
		return []engine.Item{{}}, nil
	default:
		return []engine.Item{{"value": v}}, nil
	}
}

// isJSONContentType reports whether a Content-Type names JSON: application/json, text/json
// or any +json type.
func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// decodeJSONBody parses one JSON value into plain values: numbers become int64 when whole,
// else float64. An empty body is {}.
func decodeJSONBody(b []byte) (any, error) {
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	v, err := engine.DecodeJSON(b)
	if errors.Is(err, engine.ErrTrailingJSON) {
		return nil, errors.New("data after the JSON value")
	}
	return v, err
}

// headerItem lists response headers with lower-case names: one value as a string, several as
// a list.
func headerItem(h http.Header) map[string]any {
	vals := map[string][]string{}
	for k, vs := range h {
		k = strings.ToLower(k)
		for _, v := range vs {
			// As the text body: an item's strings are UTF-8, so the stored run is what ran.
			vals[k] = append(vals[k], strings.ToValidUTF8(v, "\uFFFD"))
		}
	}
	out := make(map[string]any, len(vals))
	for k, vs := range vals {
		if len(vs) == 1 {
			out[k] = vs[0]
			continue
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		out[k] = list
	}
	return out
}

// textValues renders a template as header or query values: a list gives one value per
// element, anything else one value.
func textValues(t *engine.Template, env *engine.Env) ([]string, error) {
	v, err := t.Eval(env)
	if err != nil {
		return nil, err
	}
	if list, ok := engine.ToJSONValue(v).([]any); ok {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = engine.FormatValue(e)
		}
		return out, nil
	}
	return []string{engine.FormatValue(v)}, nil
}

// safeURL renders u for messages: no user info, no query (it may carry keys), no fragment.
func safeURL(u *url.URL) string {
	v := *u
	v.User = nil
	v.Fragment, v.RawFragment = "", ""
	s := ""
	if v.RawQuery != "" || v.ForceQuery {
		s = "?…"
	}
	v.RawQuery, v.ForceQuery = "", false
	return v.String() + s
}

// excerpt is the start of a body for an error message: at most httpExcerptBytes, valid UTF-8,
// whitespace runs collapsed.
func excerpt(b []byte) string {
	cut := len(b) > httpExcerptBytes
	if cut {
		i := httpExcerptBytes
		for i > 0 && !utf8.RuneStart(b[i]) {
			i--
		}
		b = b[:i]
	}
	s := strings.Join(strings.FieldsFunc(strings.ToValidUTF8(string(b), "\uFFFD"), unicode.IsSpace), " ")
	if cut && s != "" {
		s += "…"
	}
	return s
}

// backoffFor is the wait before try+1: backoff doubled per try, capped at maxBackoff, then
// jittered into [d/2, d].
func (h *httpRequest) backoffFor(try int) time.Duration {
	d := min(h.backoff, h.maxBackoff)
	for i := 1; i < try; i++ {
		if d > h.maxBackoff/2 {
			d = h.maxBackoff
			break
		}
		d *= 2
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) of a 429 or 503 response.
func retryAfter(status int, h http.Header, now time.Time) (time.Duration, bool) {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return 0, false
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// sleepCtx waits d or until ctx ends, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
