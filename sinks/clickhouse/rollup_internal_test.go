package clickhouse

import (
	"fmt"
	"testing"
	"time"
)

func TestPiecesCoverAWindowOnce(t *testing.T) {
	d := func(m time.Month, day int) time.Time { return time.Date(2026, m, day, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		start, end            time.Time
		coarse                bool
		months, decades, days string
	}{
		{d(8, 1), d(11, 1), true, "[2026-08-01 2026-09-01 2026-10-01]", "[]", "[]"},
		{d(8, 10), d(10, 5), true, "[2026-09-01]", "[2026-08-11 2026-08-21]", "[2026-08-10–2026-08-11 2026-10-01–2026-10-05]"},
		{d(8, 10), d(10, 5), false, "[]", "[]", "[2026-08-10–2026-10-05]"},
		{d(2, 21), d(3, 1), true, "[]", "[2026-02-21]", "[]"},
		{d(2, 21), d(2, 28), true, "[]", "[]", "[2026-02-21–2026-02-28]"},
		{d(9, 3), d(9, 3), true, "[]", "[]", "[]"},
	} {
		months, decades, days := pieces(c.start, c.end, c.coarse)
		var ranges []string
		for _, r := range days {
			ranges = append(ranges, r[0].Format(time.DateOnly)+"–"+r[1].Format(time.DateOnly))
		}
		got := fmt.Sprintf("%v %v %v", dates(months), dates(decades), ranges)
		if want := c.months + " " + c.decades + " " + c.days; got != want {
			t.Errorf("pieces(%s, %s, coarse %v) = %s, want %s", c.start.Format(time.DateOnly), c.end.Format(time.DateOnly), c.coarse, got, want)
		}
	}
}

// dates writes each of ts as a date.
func dates(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format(time.DateOnly)
	}
	return out
}
