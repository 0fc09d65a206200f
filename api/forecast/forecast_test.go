package forecast_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/api/forecast"
)

// series returns n days of spend with a known trend, a weekly pattern
// (weekends at 40 % of weekdays) and normal noise of sd.
func series(r *rand.Rand, start time.Time, n int, base, slope, sd float64) []forecast.Day {
	out := make([]forecast.Day, n)
	for i := range out {
		d := start.AddDate(0, 0, i)
		y := base + slope*float64(i)
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
			y *= 0.4
		}
		out[i] = forecast.Day{Date: d, Spend: y + r.NormFloat64()*sd}
	}
	return out
}

// Issue 13's backtest: on series with a known trend and weekly seasonality,
// the 14-days-ahead forecast has a MAPE of at most 10 %, and its 80 %
// interval holds the truth between 70 and 90 % of the time.
func TestBacktest(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	const h = 14
	var ape float64
	covered, n := 0, 0
	for trial := range 40 {
		s := series(r, start, 200, 120+float64(trial), 0.3+float64(trial%5)*0.1, 12)
		for origin := 60; origin+h <= len(s); origin += 7 {
			f, err := forecast.Forecast(s[:origin], h)
			if err != nil {
				t.Fatal(err)
			}
			truth := 0.0
			for _, d := range s[origin : origin+h] {
				truth += d.Spend
			}
			ape += math.Abs(f.Total-truth) / truth
			if f.Low <= truth && truth <= f.High {
				covered++
			}
			n++
		}
	}
	mape, coverage := ape/float64(n)*100, float64(covered)/float64(n)*100
	t.Logf("%d forecasts: MAPE %.2f %%, 80 %% interval coverage %.1f %%", n, mape, coverage)
	if mape > 10 {
		t.Errorf("MAPE %.2f %%, want ≤ 10 %%", mape)
	}
	if coverage < 70 || coverage > 90 {
		t.Errorf("interval coverage %.1f %%, want 70–90 %%", coverage)
	}
}

// A forecast needs two weeks of history, and never forecasts negative
// spend.
func TestForecastEdges(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 1))
	if _, err := forecast.Forecast(series(r, start, 13, 100, 0, 1), 7); err != forecast.ErrShortHistory {
		t.Errorf("13 days = %v, want ErrShortHistory", err)
	}
	falling := series(r, start, 28, 100, -5, 1) // reaches zero within the forecast
	f, err := forecast.Forecast(falling, 14)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Days {
		if d.Spend < 0 {
			t.Errorf("%s forecast %v, want never negative", d.Date.Format(time.DateOnly), d.Spend)
		}
	}
	if f.Low < 0 || f.Low > f.Total || f.Total > f.High {
		t.Errorf("interval [%v, %v] around %v", f.Low, f.High, f.Total)
	}
}
