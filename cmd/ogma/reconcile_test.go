package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"
)

// Issue 13: each known cause of a gap between the estimate and the bill,
// made to happen in the simulated organization and read by the real
// connector, is named by /v1/insights/reconciliation on its day and
// project: a model the price table does not know, a project reading most
// of its input from the cache, fine-tuning billed without tokens, a bill
// the vendor restated after Ogma read it, and a bill not settled yet.
func TestReconciliationNamesCausesMadeInTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ogma dev")
	}
	devNow := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	today := devNow.Truncate(24 * time.Hour)
	day := func(n int) time.Time { return today.AddDate(0, 0, n) }
	var sim *openaisim.Server
	d, err := startDevWith(t, devNow, func(s *openaisim.Server) {
		sim = s
		s.AddUsage(day(-20), openaisim.Usage{Project: "proj_unpriced", APIKey: "key_a", Model: "gpt-9-imaginary", Input: 2_000_000, Output: 500_000})
		s.AddUsage(day(-19), openaisim.Usage{Project: "proj_cache", APIKey: "key_b", Model: "gpt-4.1-mini", Input: 50_000_000, Cached: 45_000_000})
		s.BillLineItem(day(-18), "proj_finetune", "ft-gpt-4.1-mini-2025-04-14, training", 25)
		s.AddUsage(day(-3), openaisim.Usage{Project: "proj_restated", APIKey: "key_c", Model: "gpt-4.1-mini", Input: 1_000_000})
		s.AddUsage(day(-1), openaisim.Usage{Project: "proj_recent", APIKey: "key_d", Model: "gpt-4.1-mini", Input: 1_000_000})
	}, t.TempDir(), chtest.NewDB(t).Database, "--usage-interval", "2s")
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop(t)
	tok := devToken(t, d)
	wait.Until(t, "the token to work", func() bool { s, _ := d.get(t, "/me/capabilities", tok); return s == http.StatusOK })
	causes := func() map[string][]string {
		path := "/v1/insights/reconciliation?start=" + day(-30).Format(time.DateOnly) + "&end=" + today.Format(time.DateOnly)
		status, body := d.get(t, path, tok)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		var rec struct {
			Days []struct {
				Day, Project string
				BilledUSD    string `json:"billed_usd"`
				Causes       []string
			}
		}
		json.Unmarshal([]byte(body), &rec)
		out := map[string][]string{}
		for _, r := range rec.Days {
			out[r.Day+" "+r.Project] = r.Causes
			if r.BilledUSD != "" && r.BilledUSD != "0" {
				out[r.Day+" "+r.Project+" billed"] = nil
			}
		}
		return out
	}
	// The bill of day -3 is read once, then the vendor restates it.
	restated := day(-3).Format(time.DateOnly) + " proj_restated"
	wait.Until(t, "day -3's bill read", func() bool { _, ok := causes()[restated+" billed"]; return ok })
	sim.BillLineItem(day(-3), "proj_restated", "gpt-4.1-mini, input", 0.05)

	want := map[string]string{
		day(-20).Format(time.DateOnly) + " proj_unpriced": "unpriced_model",
		day(-19).Format(time.DateOnly) + " proj_cache":    "cached_input",
		day(-18).Format(time.DateOnly) + " proj_finetune": "line_items_without_tokens",
		restated: "restated",
		day(-1).Format(time.DateOnly) + " proj_recent": "cost_not_settled",
	}
	var got map[string][]string
	wait.Until(t, "each cause named on its day and project", func() bool {
		got = causes()
		for k, cause := range want {
			if !slices.Contains(got[k], cause) {
				t.Logf("%s: causes %v, want %s among them", k, got[k], cause)
				return false
			}
		}
		return true
	})
}
