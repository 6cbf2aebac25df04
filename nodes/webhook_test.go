package nodes

import (
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

func TestWebhookAuthParams(t *testing.T) {
	tests := []struct {
		name, params string
		want         WebhookAuth
	}{
		{"none by default", `{"path": "a"}`, WebhookAuth{Type: AuthNone}},
		{"header auth defaults to Authorization", `{"path": "a", "authentication": "headerAuth", "secret": "HOOK_TOKEN"}`,
			WebhookAuth{Type: AuthHeader, Secret: "HOOK_TOKEN", Header: "Authorization"}},
		{"header auth names its header", `{"path": "a", "authentication": "headerAuth", "secret": "T", "headerName": "x-api-key"}`,
			WebhookAuth{Type: AuthHeader, Secret: "T", Header: "X-Api-Key"}},
		{"basic auth", `{"path": "a", "authentication": "basicAuth", "user": "github", "secret": "HOOK_PASSWORD"}`,
			WebhookAuth{Type: AuthBasic, Secret: "HOOK_PASSWORD", User: "github"}},
		{"hmac defaults", `{"path": "a", "authentication": "hmac", "secret": "HOOK_KEY"}`,
			WebhookAuth{Type: AuthHMAC, Secret: "HOOK_KEY", SignatureHeader: "X-Flowd-Signature", TimestampHeader: "X-Flowd-Timestamp", Tolerance: 5 * time.Minute}},
		{"hmac settings", `{"path": "a", "authentication": "hmac", "secret": "_k2", "signatureHeader": "x-sig", "timestampHeader": "X-Time", "tolerance": 30000}`,
			WebhookAuth{Type: AuthHMAC, Secret: "_k2", SignatureHeader: "X-Sig", TimestampHeader: "X-Time", Tolerance: 30 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := loadNode(t, "webhook", tt.params).Impl.(*Webhook)
			if w.Auth != tt.want {
				t.Fatalf("auth = %+v, want %+v", w.Auth, tt.want)
			}
			if w.RateLimit != nil {
				t.Errorf("rate limit %v without rateLimit", w.RateLimit)
			}
		})
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in   string
		want RateLimit
		text string
	}{
		{"60/m", RateLimit{60, time.Minute}, "60/1m"},
		{"10/s", RateLimit{10, time.Second}, "10/1s"},
		{" 1000 / hour ", RateLimit{1000, time.Hour}, "1000/1h"},
		{"5/d", RateLimit{5, 24 * time.Hour}, "5/24h"},
		{"5/10s", RateLimit{5, 10 * time.Second}, "5/10s"},
		{"3/1m30s", RateLimit{3, 90 * time.Second}, "3/1m30s"},
		{"1/minute", RateLimit{1, time.Minute}, "1/1m"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRateLimit(tt.in)
			if err != nil || got != tt.want || got.String() != tt.text {
				t.Fatalf("ParseRateLimit(%q) = %+v (%s), %v; want %+v (%s)", tt.in, got, got, err, tt.want, tt.text)
			}
		})
	}
	w := loadNode(t, "webhook", `{"path": "a", "rateLimit": "2/s"}`).Impl.(*Webhook)
	if w.RateLimit == nil || *w.RateLimit != (RateLimit{2, time.Second}) {
		t.Errorf("node rate limit %v", w.RateLimit)
	}
}

func TestWebhookAuthLoadErrors(t *testing.T) {
	tests := []struct{ name, params, want string }{
		{"unknown type", `{"path": "a", "authentication": "basicauth", "secret": "S"}`,
			`parameters.authentication: "basicauth" is not one of none, headerAuth, basicAuth, hmac (did you mean "basicAuth"?)`},
		{"no secret", `{"path": "a", "authentication": "hmac"}`,
			`parameters.secret: required with authentication "hmac": the name of a secret such as "WEBHOOK_TOKEN"`},
		{"secret as a value", `{"path": "a", "authentication": "headerAuth", "secret": "s3cr3t-t0ken!"}`,
			"parameters.secret: want a secret's name (letters, digits and _"},
		{"empty secret", `{"path": "a", "authentication": "headerAuth", "secret": ""}`, "parameters.secret: want a secret's name"},
		{"secret as an expression", `{"path": "a", "authentication": "headerAuth", "secret": "{{ $secrets.T }}"}`,
			"parameters.secret: give the secret's name, such as \"WEBHOOK_TOKEN\", not an expression"},
		{"secret not a string", `{"path": "a", "authentication": "headerAuth", "secret": 42}`, "parameters.secret: want string, got number"},
		{"secret without authentication", `{"path": "a", "secret": "T"}`,
			"parameters.secret: applies only with authentication headerAuth, basicAuth or hmac"},
		{"header name for another type", `{"path": "a", "authentication": "basicAuth", "user": "u", "secret": "P", "headerName": "X-Key"}`,
			`parameters.headerName: applies only with authentication "headerAuth"`},
		{"tolerance without hmac", `{"path": "a", "tolerance": "1m"}`, `parameters.tolerance: applies only with authentication "hmac"`},
		{"bad header name", `{"path": "a", "authentication": "headerAuth", "secret": "T", "headerName": "X Key"}`,
			`parameters.headerName: "X Key" is not a valid header name`},
		{"basic without user", `{"path": "a", "authentication": "basicAuth", "secret": "P"}`,
			`parameters.user: required with authentication "basicAuth"`},
		{"empty user", `{"path": "a", "authentication": "basicAuth", "secret": "P", "user": ""}`, "parameters.user: must not be empty"},
		{"user with colon", `{"path": "a", "authentication": "basicAuth", "secret": "P", "user": "a:b"}`, `parameters.user: must not contain ":"`},
		{"same hmac headers", `{"path": "a", "authentication": "hmac", "secret": "K", "signatureHeader": "x-flowd-timestamp"}`,
			"parameters.timestampHeader: must differ from signatureHeader"},
		{"zero tolerance", `{"path": "a", "authentication": "hmac", "secret": "K", "tolerance": 0}`,
			"parameters.tolerance: must be at least 1s (timestamps are whole seconds), got 0s"},
		{"sub-second tolerance", `{"path": "a", "authentication": "hmac", "secret": "K", "tolerance": "500ms"}`,
			"parameters.tolerance: must be at least 1s"},
		{"negative tolerance", `{"path": "a", "authentication": "hmac", "secret": "K", "tolerance": "-5m"}`,
			`parameters.tolerance: duration must not be negative, got "-5m"`},
		{"word tolerance", `{"path": "a", "authentication": "hmac", "secret": "K", "tolerance": "soon"}`,
			`parameters.tolerance: want a duration such as "30s"`},
		{"rate without slash", `{"path": "a", "rateLimit": "60"}`,
			`parameters.rateLimit: no "/" in "60"; want requests/period such as "60/m", "10/s" or "5/10s"`},
		{"rate of zero", `{"path": "a", "rateLimit": "0/m"}`, "parameters.rateLimit: want a whole number of requests from 1 to 1000000"},
		{"rate not a number", `{"path": "a", "rateLimit": "many/m"}`, "parameters.rateLimit: want a whole number of requests"},
		{"rate unknown period", `{"path": "a", "rateLimit": "60/fortnight"}`, `parameters.rateLimit: unknown period "fortnight"`},
		{"rate zero period", `{"path": "a", "rateLimit": "60/0s"}`, "parameters.rateLimit: the period must be at least 1ms"},
		{"rate as an object", `{"path": "a", "rateLimit": {"requests": 60, "per": "1m"}}`, "parameters.rateLimit: want string, got object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loadNodeErr(t, "webhook", tt.params); !strings.Contains(got, tt.want) {
				t.Fatalf("error:\n%s\nwant %q", got, tt.want)
			}
		})
	}
}

// TestWebhookAuthErrorPositions loads a flow file so lines and columns are known: each
// problem points at the parameter's value, or at the parameters object for a missing one.
func TestWebhookAuthErrorPositions(t *testing.T) {
	src := `{
  "id": "hooks",
  "nodes": [
    {
      "name": "Signed",
      "type": "webhook",
      "parameters": {
        "path": "signed",
        "authentication": "hmac",
        "tolerance": "0s"
      }
    },
    {
      "name": "Token",
      "type": "webhook",
      "parameters": {"path": "token", "authentication": "jwtAuth", "rateLimit": "ten/m"}
    }
  ]
}`
	_, probs := (&engine.Loader{Registry: NewRegistry()}).Load("flows/hooks.json", []byte(src))
	var got []string
	for _, p := range probs.Errors() {
		got = append(got, p.Error())
	}
	want := []string{
		`flows/hooks.json:7:21: node "Signed": parameters.secret: required with authentication "hmac"`,
		`flows/hooks.json:10:22: node "Signed": parameters.tolerance: must be at least 1s`,
		`flows/hooks.json:16:57: node "Token": parameters.authentication: "jwtAuth" is not one of none, headerAuth, basicAuth, hmac`,
		`flows/hooks.json:16:81: node "Token": parameters.rateLimit: want a whole number of requests`,
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d:\n got  %s\n want %s…", i, got[i], want[i])
		}
	}
}
