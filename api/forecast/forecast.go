// Package forecast projects daily spend forward: a least-squares fit of a
// linear trend and a day-of-week effect to the recent days, with an 80 %
// interval from the fit's residuals. It is pure: series in, forecast out.
package forecast

import (
	"errors"
	"math"
	"time"
)

// Method names the model in answers.
const Method = "ols_trend_weekday"

// MinDays is the shortest history a forecast is made from: two weeks, so
// that every weekday is seen twice.
const MinDays = 14

// Window is the most recent history fitted: eight weeks, long enough to
// smooth one bad day, short enough to follow a change of trend.
const Window = 56

// z80 is the standard normal quantile of 0.9: the half-width of an 80 %
// interval in standard deviations.
const z80 = 1.2815515655446004

// Day is one day's spend.
type Day struct {
	Date  time.Time // UTC midnight
	Spend float64
}

// Result is the forecast of the days after the series.
type Result struct {
	// Total is the expected spend of the days forecast; Low and High bound
	// it with 80 % probability, under the model.
	Total, Low, High float64
	// Days is each forecast day's expected spend.
	Days []Day
	// Fitted is how many days of history the model was fitted to.
	Fitted int
}

// ErrShortHistory is a series shorter than MinDays.
var ErrShortHistory = errors.New("forecast: fewer than 14 days of history")

// Forecast fits the last Window days of series (consecutive days, oldest
// first; missing days count as 0 if the caller fills them so) and forecasts
// the next h days.
func Forecast(series []Day, h int) (Result, error) {
	if len(series) < MinDays {
		return Result{}, ErrShortHistory
	}
	if len(series) > Window {
		series = series[len(series)-Window:]
	}
	n := len(series)
	// Columns: intercept, trend, and six weekday dummies (Monday is the
	// base), solved by the normal equations.
	const k = 8
	row := func(t int, d time.Time) [k]float64 {
		var x [k]float64
		x[0], x[1] = 1, float64(t)
		if wd := int(d.Weekday()+6) % 7; wd > 0 { // Monday 0 … Sunday 6
			x[1+wd] = 1
		}
		return x
	}
	var xtx [k][k]float64
	var xty [k]float64
	for t, d := range series {
		x := row(t, d.Date)
		for i := range k {
			xty[i] += x[i] * d.Spend
			for j := range k {
				xtx[i][j] += x[i] * x[j]
			}
		}
	}
	beta, ok := solve(xtx, xty)
	if !ok {
		return Result{}, errors.New("forecast: the history does not determine the model")
	}
	predict := func(t int, d time.Time) float64 {
		x := row(t, d)
		y := 0.0
		for i := range k {
			y += x[i] * beta[i]
		}
		return y
	}
	var sse float64
	for t, d := range series {
		e := d.Spend - predict(t, d.Date)
		sse += e * e
	}
	sigma := math.Sqrt(sse / float64(max(n-k, 1)))
	r := Result{Fitted: n}
	last := series[n-1].Date
	var sum [k]float64 // the forecast days' regressors, summed
	for i := 1; i <= h; i++ {
		d := last.AddDate(0, 0, i)
		x := row(n-1+i, d)
		for j := range k {
			sum[j] += x[j]
		}
		y := math.Max(predict(n-1+i, d), 0) // spend is never negative
		r.Days = append(r.Days, Day{Date: d, Spend: y})
		r.Total += y
	}
	// The sum's error: h independent daily errors, and the error of the
	// fitted trend and weekdays carried to the days forecast
	// (σ²·sᵀ(XᵀX)⁻¹s).
	v, _ := solve(xtx, sum)
	carried := 0.0
	for j := range k {
		carried += sum[j] * v[j]
	}
	half := z80 * sigma * math.Sqrt(float64(h)+carried)
	r.Low, r.High = math.Max(r.Total-half, 0), r.Total+half
	return r, nil
}

// solve solves a·x = b by Gaussian elimination with partial pivoting; ok is
// false for a singular a.
func solve[A ~[8][8]float64, B ~[8]float64](a A, b B) ([8]float64, bool) {
	const n = 8
	var x [8]float64
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) < 1e-12 {
			return x, false
		}
		a[c], a[p] = a[p], a[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < n; r++ {
			f := a[r][c] / a[c][c]
			for j := c; j < n; j++ {
				a[r][j] -= f * a[c][j]
			}
			b[r] -= f * b[c]
		}
	}
	for r := n - 1; r >= 0; r-- {
		s := b[r]
		for j := r + 1; j < n; j++ {
			s -= a[r][j] * x[j]
		}
		x[r] = s / a[r][r]
	}
	return x, true
}
