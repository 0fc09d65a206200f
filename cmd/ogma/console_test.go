package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// chromium is Debian's browser, which `make test` installs.
const chromium = "/usr/bin/chromium"

// screenshotDir is where a test run leaves a picture of every screen
// (the README shows two of them, copied to docs/).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", ".ogma", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Issue 14: the console in a real browser against `ogma dev`: signed in
// from the banner's link, API Usage shows the API's totals and the vendor
// filter changes them, onboarding with a project key shows wrong_key_type
// inline and saves nothing, linking an unmapped key moves its activity to
// the person, verify-now reports success and then the first bad seq after
// a ledger row is tampered with; every screen passes axe-core with no
// serious violation, and is photographed.
func TestConsoleInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ogma dev and a browser")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no %s: `make test` installs Debian's chromium", chromium)
	}
	axe, err := os.ReadFile(filepath.Join("..", "..", "web", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core: %v (`make test` runs npm ci in web/)", err)
	}
	dataDir := t.TempDir()
	cfg := chtest.NewDB(t)
	devNow := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d, err := startDevAt(t, devNow, dataDir, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dataDir, "token"))
	tok := strings.TrimSpace(string(raw))
	wait.Until(t, "/healthz 200", func() bool { s, _ := d.get(t, "/healthz", ""); return s == 200 })
	// Both vendors' usage in, so that the screens show data.
	wait.Until(t, "both vendors' usage", func() bool {
		for _, vendor := range []string{"openai", "anthropic"} {
			rows := d.usage(t, tok, devNow.AddDate(0, 0, -30), devNow.AddDate(0, 0, 1), "&vendor="+vendor)
			if len(rows) == 0 || rows[0].input == 0 {
				return false
			}
		}
		return true
	})
	link := consoleLink.FindStringSubmatch(d.stdout.String())
	if link == nil || !strings.Contains(link[1], "#token=") {
		t.Fatalf("the banner names no console link with the token:\n%s", d.stdout.String())
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first run starts the browser: no timeout on it (one would stop
	// the browser); later steps each get three minutes.
	if err := chromedp.Do(bctx, chromedp.Navigate(link[1])); err != nil {
		t.Fatalf("open the console: %v", err)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	// peek reads a text that a waiting loop polls: a node the page
	// replaced between finding and reading it reads as "", and the loop
	// tries again.
	peek := func(a chromedp.Action[string]) string {
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		v, _ := chromedp.Run(ctx, a)
		return v
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	shots := screenshotDir(t)
	check := func(screen string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`window.scrollTo(0, 0)`)); err != nil {
			t.Fatalf("scroll %s: %v", screen, err)
		}
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", screen, err)
		}
		os.WriteFile(filepath.Join(shots, screen+".png"), shot, 0o644)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](string(axe))); err != nil {
			t.Fatalf("load axe-core: %v", err)
		}
		serious, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(document).then(r =>
			r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id + ': ' + v.help + ' ' + v.nodes.map(n => n.target).join(' ')))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe on %s: %v", screen, err)
		}
		if len(serious) > 0 {
			t.Errorf("%s: serious accessibility violations: %v", screen, serious)
		}
	}

	// Signed in from the banner's link; the token leaves the address bar.
	do("API Usage", chromedp.WaitVisible(css(`[data-testid=usage-total]`)))
	if hash := get("the address", chromedp.Evaluate[string](`location.hash`)); strings.Contains(hash, "token") {
		t.Errorf("the token stayed in the address bar: %q", hash)
	}
	start := get("the window's start", chromedp.Value(css(`input[type=date]`)))
	end := get("the window's end", chromedp.Evaluate[string](`document.querySelectorAll('input[type=date]')[1].value`))
	tokens := func(vendor string) string {
		var sum int64
		for _, r := range d.usageIn(t, tok, start, end, vendor) {
			sum += r.input + r.output
		}
		return fmt.Sprint(sum)
	}
	total := func() string {
		return strings.ReplaceAll(peek(chromedp.Text(css(`[data-testid=usage-total] strong`))), ",", "")
	}
	wait.Until(t, "API Usage to show the API's totals", func() bool {
		do("reload", chromedp.Navigate("http://"+d.http+"/#/usage"), chromedp.Reload(), chromedp.WaitVisible(css(`[data-testid=usage-total]`)))
		got := total()
		return got != "0" && got == tokens("all")
	})
	check("usage")
	// The vendor filter applies on change; each try reads the data anew
	// (polls still land while the test runs).
	wait.Until(t, "the vendor filter to change the totals", func() bool {
		do("filter by vendor", chromedp.SetValue(css(`select`), "anthropic"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector('select').dispatchEvent(new Event('change')), undefined`),
			chromedp.WaitVisible(css(`[data-testid=usage-total]`)))
		got := total()
		return got != "0" && got == tokens("anthropic") && got != tokens("all")
	})

	// Onboarding: a project key is the wrong type, named inline; nothing is saved.
	sim := openaisim.New(openaisim.Config{Seed: devSeed, Users: testUsers})
	before := generation(t, d, tok)
	do("onboarding with a project key", chromedp.Navigate("http://"+d.http+"/#/onboarding"), chromedp.WaitVisible(css(`form.card input`)),
		chromedp.SendKeys(css(`form.card input`), sim.Key(openaisim.KeyProject)), chromedp.Click(css(`form.card button[type=submit]`)),
		chromedp.WaitVisible(css(`#openai-key-error`)))
	if code := get("the error's code", chromedp.Evaluate[string](`document.getElementById('openai-key-error').dataset.code`)); code != "wrong_key_type" {
		t.Errorf("onboarding with a project key shows %q, want wrong_key_type", code)
	}
	if g := generation(t, d, tok); g != before {
		t.Errorf("a refused key was saved: generation %d, was %d", g, before)
	}
	check("onboarding")

	// Linking an unmapped key moves its activity to the person.
	do("unmapped activity", chromedp.Navigate("http://"+d.http+"/#/unmapped"), chromedp.WaitVisible(css(`[data-testid=unmapped-table]`)))
	check("unmapped")
	do("link the first key", chromedp.SetValue(css(`[data-testid=unmapped-table] tbody tr input`), "linked.person@example.com"),
		chromedp.Click(css(`[data-testid=unmapped-table] tbody tr button`)), chromedp.WaitVisible(css(`p.msg[role=status]`)))
	wait.Until(t, "the key's activity to be the person's", func() bool {
		_, body := d.get(t, "/v1/people?start="+devNow.AddDate(0, 0, -90).Format(time.DateOnly)+"&end="+devNow.AddDate(0, 0, 1).Format(time.DateOnly), tok)
		var people struct {
			People []struct {
				Email            string
				InputTotal       int64  `json:"input_total,string"`
				Output           int64  `json:"output,string"`
				Requests         int64  `json:"requests,string"`
				EstimatedCostUSD string `json:"estimated_cost_usd"`
			}
		}
		json.Unmarshal([]byte(body), &people)
		for _, p := range people.People {
			if p.Email == "linked.person@example.com" {
				return p.InputTotal+p.Output+p.Requests > 0 || p.EstimatedCostUSD != "0"
			}
		}
		return false
	})

	// The other screens.
	for _, s := range []struct{ route, ready string }{
		{"users", `[data-testid=people-table]`}, {"insights", `[data-testid=forecast-table]`},
		{"settings", `section.integration`}, {"integrity", `main button`},
	} {
		do(s.route, chromedp.Navigate("http://"+d.http+"/#/"+s.route), chromedp.WaitVisible(css(s.ready)))
		check(s.route)
	}

	// On a phone: every screen fits the width (tables scroll in their own
	// box), and passes axe-core there too.
	do("a phone's viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, route := range []string{"usage", "users", "unmapped", "insights", "integrity", "settings", "onboarding"} {
		do(route+" on a phone", chromedp.Navigate("http://"+d.http+"/#/"+route), chromedp.WaitVisible(css(`main h1`)),
			chromedp.WaitNotPresent(css(`main p.msg[role=status]:only-of-type`)))
		if wide := get("the page's width", chromedp.Evaluate[string](
			`String(document.documentElement.scrollWidth > window.innerWidth + 1 ? document.documentElement.scrollWidth : 0)`)); wide != "0" {
			t.Errorf("%s on a phone is %s px wide, past the screen's %d", route, wide, 390)
		}
		check(route + "-phone")
	}
	do("back to a laptop", chromedp.EmulateViewport(1280, 1000), chromedp.Navigate("http://"+d.http+"/#/integrity"), chromedp.WaitVisible(css(`main button`)))

	// Verify now: success, then the first bad seq after tampering.
	result := func() string { return peek(chromedp.Text(css(`[data-testid=verify-result]`))) }
	do("verify now", chromedp.Click(css(`main button`)))
	wait.Until(t, "verify-now to report", func() bool { r := result(); return r != "" && !strings.Contains(r, "Verifying") })
	if r := result(); !strings.HasPrefix(r, "Verified") {
		t.Fatalf("verify now = %q, want Verified", r)
	}
	// The evidence bundle downloads.
	do("download the bundle", chromedp.Click(css(`[data-testid=bundle]`)))
	wait.Until(t, "the bundle downloaded", func() bool {
		return strings.HasPrefix(peek(chromedp.Text(css(`[data-testid=bundle-result]`))), "Downloaded")
	})

	// One data byte of the event at seq 8 (a later insert of the same
	// tenant, seq and hash is what FINAL reads).
	const bad = 8
	conn := chtest.Conn(t, cfg)
	rewrite(t, conn, bad, func(s string) string { return s }, func(data string) string { return strings.Replace(data, `"`, `"x`, 1) })
	do("verify again", chromedp.Click(css(`main button`)))
	wait.Until(t, "verify-now to report the tampering", func() bool { return strings.Contains(result(), "failed") })
	if r := result(); !strings.Contains(r, "seq "+strconv.Itoa(bad)) {
		t.Errorf("verify now after tampering = %q, want the first bad seq %d", r, bad)
	}

	// A new tenant onboards in the console: a full key shows the checklist
	// before anything is saved, connecting follows the backfill to its end,
	// and API Usage then shows the simulator's totals.
	if _, err := ogma(t, nil, "tenant", "create", "--id", "acme", "--name", "Acme", "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	acme, err := ogma(t, nil, "token", "create", "--tenant", "acme", "--data-dir", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	acme = strings.TrimSpace(acme)
	wait.Until(t, "the new token to work", func() bool { s, _ := d.get(t, "/me/capabilities", acme); return s == 200 })
	openai := `form.card:first-of-type`
	do("onboarding with a full key", chromedp.Navigate("http://"+d.http+"/#token="+acme), chromedp.WaitVisible(css(`[data-testid=usage-total]`)),
		chromedp.Navigate("http://"+d.http+"/#/onboarding"), chromedp.WaitVisible(css(openai+` input`)),
		chromedp.SendKeys(css(openai+` input`), sim.Key(openaisim.KeyFull)), chromedp.Click(css(openai+` button[type=submit]`)),
		chromedp.WaitVisible(css(openai+` [data-testid=checklist]`)))
	if g := generation(t, d, acme); g != 0 {
		t.Errorf("a checked key was saved before connect: generation %d", g)
	}
	if v := get("the key field", chromedp.Value(css(openai+` input`))); v != "" {
		t.Errorf("the key field kept %d characters after checking", len(v))
	}
	check("onboarding-checklist")
	do("connect", chromedp.Click(css(openai+` [data-testid=checklist] + button`)), chromedp.WaitVisible(css(openai+` [data-testid=backfill]`)))
	wait.Until(t, "the backfill to complete", func() bool {
		return peek(chromedp.Text(css(openai+` [data-testid=backfill]`))) == "Backfill done"
	})
	check("onboarding-backfilled")
	// Settled days only: today's open bucket still grows as the clock runs.
	today := devNow.Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -30)
	var want int64
	for _, n := range simTokens(openaisim.New(openaisim.Config{Seed: devSeed, Users: testUsers, Now: func() time.Time { return devNow }}), from, today, "") {
		want += n
	}
	wait.Until(t, "API Usage to show the simulator's totals", func() bool {
		do("API Usage of the new tenant", chromedp.Navigate("http://"+d.http+"/#/usage"), chromedp.Reload(), chromedp.WaitVisible(css(`[data-testid=usage-total]`)),
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(([a, b]) => { a.value = %q; b.value = %q })(document.querySelectorAll('form.filters input[type=date]'))`,
				from.Format(time.DateOnly), today.Format(time.DateOnly))),
			chromedp.Click(css(`form.filters button[type=submit]`)), chromedp.WaitVisible(css(`[data-testid=usage-total]`)))
		return total() == fmt.Sprint(want)
	})

	// Settings → Integrations: replace the key (a new generation), then
	// disconnect, which asks for a confirmation first.
	do("replace the key", chromedp.Navigate("http://"+d.http+"/#/settings"), chromedp.WaitVisible(css(`section.integration details summary`)),
		chromedp.Click(css(`section.integration details summary`)),
		chromedp.SendKeys(css(`section.integration details input`), sim.Key(openaisim.KeyFull)),
		chromedp.Click(css(`section.integration details button[type=submit]`)),
		chromedp.WaitVisible(css(`section.integration details [data-testid=checklist] + button`)),
		chromedp.Click(css(`section.integration details [data-testid=checklist] + button`)),
		chromedp.WaitVisible(css(`section.integration details [data-testid=backfill]`)))
	wait.Until(t, "the replaced key's generation", func() bool { return generation(t, d, acme) == 2 })
	do("disconnect, first press", chromedp.Navigate("http://"+d.http+"/#/settings"), chromedp.WaitVisible(css(`section.integration button.danger`)),
		chromedp.Click(css(`section.integration button.danger`)), chromedp.WaitVisible(css(`section.integration p.msg.warn`)))
	if !connected(t, d, acme) {
		t.Fatal("the first press of disconnect disconnected: it must ask first")
	}
	do("disconnect, confirmed", chromedp.Click(css(`section.integration button.danger`)))
	wait.Until(t, "the integration to be disconnected", func() bool { return !connected(t, d, acme) })
}

// consoleLink is the banner's console line.
var consoleLink = regexp.MustCompile(`Console\s+(http://\S+)`)

// usageIn returns /v1/usage of vendor over [start, end), dates as text.
func (d *devRun) usageIn(t *testing.T, tok, start, end, vendor string) []usageRow {
	t.Helper()
	s, _ := time.Parse(time.DateOnly, start)
	e, _ := time.Parse(time.DateOnly, end)
	return d.usage(t, tok, s, e, "&vendor="+vendor)
}

// generation returns the OpenAI key generation of tok's tenant.
func generation(t *testing.T, d *devRun, tok string) int {
	t.Helper()
	return openaiIntegration(t, d, tok).Generation
}

// connected reports whether tok's tenant has OpenAI connected.
func connected(t *testing.T, d *devRun, tok string) bool {
	t.Helper()
	return openaiIntegration(t, d, tok).Connected
}

func openaiIntegration(t *testing.T, d *devRun, tok string) (in struct {
	Generation int
	Connected  bool
}) {
	t.Helper()
	_, body := d.get(t, "/v1/integrations/openai", tok)
	json.Unmarshal([]byte(body), &in)
	return in
}
