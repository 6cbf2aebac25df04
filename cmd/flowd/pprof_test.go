package main

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

var pprofRE = regexp.MustCompile(`msg="pprof listening" addr=(\S+)`)

func TestServePprofAddr(t *testing.T) {
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct{ name, flag, env string }{
		{"flag with host", "127.0.0.1:0", ""},
		{"bare port means loopback", ":0", ""},
		{"environment", "", "FLOWD_PPROF_ADDR=:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var extra, env []string
			if tc.flag != "" {
				extra = []string{"--pprof-addr", tc.flag}
			}
			if tc.env != "" {
				env = []string{tc.env}
			}
			s := startServe(t, flowsDir(t, nil), filepath.Join(t.TempDir(), "flowd.db"), env, extra...)
			m := pprofRE.FindStringSubmatch(s.log.String())
			if m == nil {
				t.Fatalf("no pprof address in the log:\n%s", s.log.String())
			}
			if !strings.HasPrefix(m[1], "127.0.0.1:") {
				t.Errorf("pprof listens on %s, want loopback", m[1])
			}
			if code, body := get("http://" + m[1] + "/debug/pprof/cmdline"); code != 200 || !strings.Contains(body, "serve") {
				t.Errorf("pprof cmdline: %d %q", code, body)
			}
			if code, body := get("http://" + m[1] + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
				t.Errorf("pprof goroutine: %d %.80q", code, body)
			}
			if code, _ := get(s.url("/debug/pprof/")); code != http.StatusNotFound {
				t.Errorf("main address serves /debug/pprof/: %d, want 404", code)
			}
			if code := s.stop(syscall.SIGTERM); code != 0 {
				t.Errorf("exit %d", code)
			}
		})
	}

	t.Run("off by default", func(t *testing.T) {
		s := startServe(t, flowsDir(t, nil), filepath.Join(t.TempDir(), "flowd.db"), nil)
		if strings.Contains(s.log.String(), "pprof") {
			t.Errorf("pprof mentioned without the flag:\n%s", s.log.String())
		}
		s.stop(syscall.SIGTERM)
	})

	t.Run("bad address", func(t *testing.T) {
		r := flowd(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "flowd.db"), "--pprof-addr", "nonsense")
		if r.code != exitProblem || !strings.Contains(r.stderr, `pprof address \"nonsense\"`) {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}
