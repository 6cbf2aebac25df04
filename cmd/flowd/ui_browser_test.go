package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The UI's end-to-end tests drive the real flowd binary with headless Chromium. CI installs
// Debian's chromium (.ci/run); elsewhere the tests skip when no browser is found, unless CI
// is set, when a missing browser fails them.

// browserPath finds Chromium: $FLOWD_CHROME, else the usual names on PATH.
func browserPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLOWD_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (install Debian's chromium, or set FLOWD_CHROME); CI must run the browser tests")
	}
	t.Skip("no Chromium found: install Debian's chromium or set FLOWD_CHROME to run the browser tests")
	return ""
}

// screenshotDir is where the browser tests save screenshots: $FLOWD_SCREENSHOTS, else a new
// temporary folder that is kept for a reviewer to look at.
var screenshotDir = sync.OnceValues(func() (string, error) {
	if d := os.Getenv("FLOWD_SCREENSHOTS"); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	return os.MkdirTemp("", "flowd-screenshots-")
})

// browser is one headless Chromium for a test, with what its pages did.
type browser struct {
	t        *testing.T
	ctx      context.Context // the first tab
	base     string          // flowd's URL
	mu       sync.Mutex
	problems []string // console errors, exceptions, CSP violations
	foreign  []string // requests to anywhere but flowd
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browserPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	b.watch(ctx)
	return b
}

// watch records the tab's console errors, uncaught exceptions and requests leaving flowd.
func (b *browser) watch(ctx context.Context) {
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.problems = append(b.problems, "exception: "+ev.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				b.problems = append(b.problems, fmt.Sprintf("console.error %v", ev.Args))
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				b.problems = append(b.problems, fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if !strings.HasPrefix(u, b.base+"/") && !strings.HasPrefix(u, "data:") {
				b.foreign = append(b.foreign, u)
			}
		}
	})
	if err != nil {
		b.t.Fatalf("listen to browser events: %v", err)
	}
	for _, enable := range []func() error{
		func() error { _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); return err },
		func() error { _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); return err },
		func() error { _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); return err },
	} {
		if err := enable(); err != nil {
			b.t.Fatalf("enable browser events: %v", err)
		}
	}
}

// tab opens another tab in the same browser.
func (b *browser) tab() context.Context {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open tab: %v", err)
	}
	b.watch(ctx)
	return ctx
}

// do runs steps in a tab with a deadline, failing the test with what was being done.
func (b *browser) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, with a deadline.
func get[T any](b *browser, ctx context.Context, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// shot saves a full-page screenshot of the tab as name.png.
func (b *browser) shot(ctx context.Context, name string) {
	b.t.Helper()
	dir, err := screenshotDir()
	if err != nil {
		b.t.Fatalf("screenshot folder: %v", err)
	}
	png := get(b, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// text returns the visible text of the first element matching sel.
func (b *browser) text(ctx context.Context, sel string) string {
	b.t.Helper()
	return get(b, ctx, "read "+sel, chromedp.Text(sel))
}

// check fails the test if any page logged an error or reached beyond flowd.
func (b *browser) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Errorf("the pages reported problems:\n%s", strings.Join(b.problems, "\n"))
	}
	if len(b.foreign) > 0 {
		b.t.Errorf("the pages made requests beyond flowd: %v", b.foreign)
	}
}

const brokenFlow = `{"id": "broken", "name": "Always fails",
 "nodes": [
	{"name": "Start", "type": "webhook", "position": [0, 0], "parameters": {"path": "broken", "httpMethod": "POST"}},
	{"name": "Call the API", "type": "code", "position": [240, 0], "parameters": {"code": ["fail('the partner API said no')"]}}],
 "connections": {"Start": ["Call the API"]}}`

func TestUIInBrowser(t *testing.T) {
	ts := newTokenServer(t, 3600)
	// The token flow's schedule is disabled, so that the first run the test starts is the
	// one that fetches the token.
	dir := flowsDir(t, map[string]string{"broken.json": brokenFlow})
	editTokenFlow(t, dir, withoutSchedule)
	s := startServe(t, dir, filepath.Join(t.TempDir(), "flowd.db"), []string{"TOKEN_URL=" + ts.URL})
	base := "http://" + s.addr
	b := newBrowser(t, base)
	runsTab := b.ctx
	flowsTab := b.tab()

	// The runs page is open and connected to the live stream before anything runs.
	b.do(runsTab, "open the runs page",
		chromedp.Navigate(base+"/runs"),
		chromedp.WaitVisible(`#live-status`),
		chromedp.Evaluate[chromedp.Void](`window.flowdNoReload = true`),
	)
	if got := b.text(runsTab, "#live-status"); got != "live" {
		t.Fatalf("live status %q", got)
	}

	// "Run now" on the flows page starts a run and shows it.
	// The page refetches itself once its live stream opens and swaps its regions, Run now
	// among them: click after that, not on a button about to be replaced.
	b.do(flowsTab, "open the flows page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(`html[data-refreshed] tr[data-flow-id="token-refresh"]`))
	b.shot(flowsTab, "01-flows")
	b.do(flowsTab, "click Run now",
		chromedp.Click(`button[data-run-now="token-refresh"]`),
		chromedp.WaitVisible(`section[data-node-detail]`), // the run page, once the run ended
	)
	runURL := get(b, flowsTab, "read the location", chromedp.Location())
	runID := strings.TrimPrefix(runURL, base+"/runs/")
	if len(runID) != 26 {
		t.Fatalf("Run now led to %q", runURL)
	}

	// The new run appears on the open runs page, without a reload, and reaches success.
	row := fmt.Sprintf(`tr[data-run-id="%s"].row-success`, runID)
	b.do(runsTab, "see the new run appear", chromedp.WaitVisible(row))
	if !get(b, runsTab, "check for a reload", chromedp.Evaluate[bool](`window.flowdNoReload === true`)) {
		t.Fatal("the runs page reloaded instead of updating in place")
	}
	b.shot(runsTab, "02-runs-live")

	// Open the run: the executed path is highlighted and the untaken branch is not.
	b.do(runsTab, "open the run", chromedp.Click(row+` a.run-link`), chromedp.WaitVisible(`svg [data-node]`))
	classes := get(b, runsTab, "read the graph", chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll('svg [data-node]')].map(n => [n.dataset.node, n.getAttribute('class')]))`))
	for _, node := range []string{"Webhook", "1. initiate static data", "if token is valid", "get new accessToken", "2. set token in static data", "continue with valid token"} {
		if !strings.Contains(classes[node], "st-success") {
			t.Errorf("executed node %q has classes %q", node, classes[node])
		}
	}
	if c := classes["Schedule Trigger"]; !strings.Contains(c, "st-skipped") {
		t.Errorf("the trigger that did not fire has classes %q", c)
	}

	// Select the HTTP node: its output shows, with the token masked.
	b.do(runsTab, "select the HTTP node",
		chromedp.Click(`svg [data-node="get new accessToken"]`),
		chromedp.WaitVisible(`section[data-node-detail="get new accessToken"]`),
	)
	out := b.text(runsTab, `[data-io="output"]`)
	if !strings.Contains(out, "expires_in") || !strings.Contains(out, "••••") || strings.Contains(out, "tok-1") {
		t.Errorf("HTTP node output, masked: %q", out)
	}
	if body := b.text(runsTab, "body"); strings.Contains(body, "tok-1") {
		t.Error("the token shows somewhere on the masked run page")
	}
	b.shot(runsTab, "03-run-masked")

	// The record was redacted before it was stored: revealing shows no more of the token.
	b.do(runsTab, "reveal secrets", chromedp.Click(`a[data-reveal]`), chromedp.WaitVisible(`a[data-reveal][aria-pressed="true"]`))
	if out := b.text(runsTab, `[data-io="output"]`); !strings.Contains(out, "expires_in") || strings.Contains(out, "tok-1") {
		t.Errorf("HTTP node output, revealed: %q", out)
	}
	b.shot(runsTab, "04-run-revealed")

	// The flow page masks the stored token too.
	b.do(flowsTab, "open the flow page", chromedp.Navigate(base+"/flows/token-refresh"), chromedp.WaitVisible(`[data-static]`))
	if st := b.text(flowsTab, `[data-static]`); !strings.Contains(st, "••••") || strings.Contains(st, "tok-1") {
		t.Errorf("static data on the flow page: %q", st)
	}
	b.shot(flowsTab, "05-flow")

	// A failing run shows its error at the top.
	res, err := http.Post(base+"/webhook/broken", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	failedID := res.Header.Get("X-Flowd-Run-Id")
	if failedID == "" {
		t.Fatalf("no run id from the failing webhook (status %d)", res.StatusCode)
	}
	b.do(runsTab, "open the failed run", chromedp.Navigate(base+"/runs/"+failedID), chromedp.WaitVisible(`[data-run-error]`))
	if msg := b.text(runsTab, `[data-run-error]`); !strings.Contains(msg, "Call the API") || !strings.Contains(msg, "the partner API said no") {
		t.Errorf("run error banner %q", msg)
	}
	b.shot(runsTab, "06-run-failed")

	// Filters: only failed runs.
	b.do(runsTab, "filter by status",
		chromedp.Navigate(base+"/runs"),
		chromedp.WaitVisible(`select[name="status"]`),
		// Choosing a status applies it at once: the page reloads with the filter.
		chromedp.SetValue(`select[name="status"]`, "error"),
		chromedp.WaitReady(`option[value="error"][selected]`),
	)
	if loc := get(b, runsTab, "read the location", chromedp.Location()); !strings.HasSuffix(loc, "/runs?flow=&status=error") {
		t.Errorf("filtered location %q", loc)
	}
	rows := get(b, runsTab, "read the filtered rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr[data-run-id]')].map(r => r.className)`))
	if len(rows) != 1 || rows[0] != "row-error" {
		t.Errorf("rows filtered by error: %v", rows)
	}

	// Paging: more runs than a page holds.
	for range 55 {
		res, err := http.Post(base+"/webhook/token-refresh", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	runIDs := chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr[data-run-id]')].map(r => r.dataset.runId)`)
	b.do(runsTab, "open the runs of the token flow", chromedp.Navigate(base+"/runs?flow=token-refresh"), chromedp.WaitVisible(`html[data-refreshed] a[data-next]`))
	first := get(b, runsTab, "read the first page", runIDs)
	b.do(runsTab, "go to older runs", chromedp.Click(`a[data-next]`), chromedp.WaitVisible(`a[rel="first"]`))
	second := get(b, runsTab, "read the second page", runIDs)
	if len(first) != 50 || len(second) != 6 {
		t.Errorf("pages of %d and %d runs, want 50 and 6", len(first), len(second))
	}
	for _, id := range second {
		if slices.Contains(first, id) || id >= first[len(first)-1] {
			t.Errorf("run %s on the second page is not older than the first page", id)
		}
	}
	b.shot(runsTab, "07-runs-page-2")

	// A phone-sized screen.
	b.do(flowsTab, "phone layout",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		chromedp.Navigate(base+"/runs/"+runID),
		chromedp.WaitVisible(`section[data-node-detail]`),
	)
	if get(b, flowsTab, "measure the width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
		t.Error("the run page scrolls sideways on a phone")
	}
	b.shot(flowsTab, "08-run-phone")

	b.check()
	if dir, err := screenshotDir(); err == nil {
		t.Logf("UI screenshots are in %s", dir)
	}
}
