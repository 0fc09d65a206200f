// Command benchtable reads the output of `go test -bench` for Ogma's
// benchmarks on standard input and prints, as a Markdown table, each figure
// beside the limit measured in the same run, the ratio and the target:
// what `make bench` shows and the README's figures come from.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// results maps a benchmark (without its -cpu suffix) to its metrics by unit.
type results map[string]map[string]float64

func parse(r io.Reader) (results, string) {
	res := results{}
	cpu := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(os.Stderr, line)
		if c, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = strings.TrimSpace(c)
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		res[name] = m
	}
	return res, cpu
}

// row is one line of the table.
type row struct {
	what, figure, limit, ratio, target string
}

func main() {
	res, cpu := parse(os.Stdin)
	get := func(name, unit string) (float64, bool) {
		v, ok := res[name][unit]
		return v, ok
	}
	var rows []row
	ratioRow := func(what, name, unit, limitName, limitUnit string, target float64) {
		v, ok := get(name, unit)
		l, lok := get(limitName, limitUnit)
		if !ok || !lok {
			rows = append(rows, row{what: what, figure: "not run"})
			return
		}
		r := v / l
		rows = append(rows, row{what, human(v) + " " + unit, human(l) + " " + limitUnit, fmt.Sprintf("%.2f", r),
			fmt.Sprintf("≥ %.1f %s", target, mark(r >= target))})
	}
	ratioRow("processor vs a bare exactly-once copy loop, 20k new rows", "BenchmarkProcessor/loop=processor", "events/s",
		"BenchmarkProcessor/loop=copy", "records/s", 0.5)
	if v, ok := get("BenchmarkRestore", "events/s"); ok {
		rows = append(rows, row{what: "restore of a partition from ogma.events, 20.2k events", figure: human(v) + " events/s"})
	}
	ratioRow("ClickHouse sink alone vs a bare clickhouse-go insert of its rows", "BenchmarkEndToEnd/loop=sink", "events/s",
		"BenchmarkEndToEnd/loop=bare", "rows/s", 0.5)
	ratioRow("raw → ClickHouse (processor and sink) vs a bare clickhouse-go insert", "BenchmarkEndToEnd/loop=pipeline", "events/s",
		"BenchmarkEndToEnd/loop=bare", "rows/s", 0.5)
	for _, written := range []struct{ name, what string }{{"written=none", "every row in the rollup"},
		{"written=since", "300 facts restated since its build"}, {"open=today", "those, and today's bucket open (3,000 rows more)"}} {
		name := "BenchmarkUsageQuery/" + written.name
		if p50, ok := get(name, "p50-ms"); ok {
			p99, _ := get(name, "p99-ms")
			rows = append(rows, row{what: "`GET /v1/usage` person × model, 90 days × 1,000 users (270k facts), " + written.what + ", p50 / p99",
				figure: fmt.Sprintf("%.0f / %.0f ms", p50, p99), target: "p99 < 50 ms " + mark(p99 < 50)})
		}
	}
	for _, screen := range []string{"usage", "users", "person", "unmapped", "insights", "settings"} {
		name := "BenchmarkConsoleScreens/screen=" + screen
		if p50, ok := get(name, "p50-ms"); ok {
			worst, _ := get(name, "max-ms")
			rows = append(rows, row{what: "console screen " + screen + ": its API calls, 90 days × 1,000 users, p50 / max",
				figure: fmt.Sprintf("%.0f / %.0f ms", p50, worst), target: "< 1 s " + mark(worst < 1000)})
		}
	}
	if v, ok := get("BenchmarkBackfillToQueryable", "s/backfill"); ok {
		rows = append(rows, row{what: "90-day backfill of a 1,000-user organization, connect to queryable",
			figure: fmt.Sprintf("%.1f s", v), target: "< 60 s " + mark(v < 60)})
	}
	if v, ok := get("BenchmarkProcess5MKeys", "restore-s"); ok {
		keys, _ := get("BenchmarkProcess5MKeys", "keys")
		rows = append(rows, row{what: fmt.Sprintf("`ogma process` on %s stored keys: restore", human(keys)), figure: fmt.Sprintf("%.3f s", v)})
		rss, _ := get("BenchmarkProcess5MKeys", "peak-RSS-MB")
		rows = append(rows, row{what: fmt.Sprintf("`ogma process` on %s stored keys: peak RSS", human(keys)),
			figure: fmt.Sprintf("%.0f MB", rss), target: "< 500 MB " + mark(rss < 500)})
	}
	ratioRow("`ogma verify` vs canonicalize + SHA-256 alone, 20k events", "BenchmarkVerify/loop=verify", "events/s",
		"BenchmarkVerify/loop=jcs-sha256", "events/s", 0.8)
	if v, ok := get("BenchmarkVerifyMillion", "s/verify"); ok {
		rss, _ := get("BenchmarkVerifyMillion", "peak-RSS-MB")
		mb, _ := get("BenchmarkVerifyMillion", "bundle-MB")
		rows = append(rows, row{what: fmt.Sprintf("`ogma verify` of a 1M-event bundle (%.0f MB)", mb),
			figure: fmt.Sprintf("%.1f s, peak RSS %.0f MB", v, rss)})
	}

	fmt.Printf("\nOgma benchmarks, %s: %s, %d cores, %s\n\n", time.Now().UTC().Format("2006-01-02"), cpu, runtime.NumCPU(), memory())
	fmt.Println("| what | figure | limit, same run | ratio | target |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.what, r.figure, r.limit, r.ratio, r.target)
	}
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// human writes v with a k or M suffix.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// memory returns the machine's memory from /proc/meminfo.
func memory() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "memory unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return fmt.Sprintf("%.0f GiB", kb/(1<<20))
		}
	}
	return "memory unknown"
}
