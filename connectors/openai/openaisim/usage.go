package openaisim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// arrayParam reads an array query parameter in any of the three encodings
// integrators use: name[]=a&name[]=b, name=a&name=b, and name=a,b.
func arrayParam(q url.Values, name string) []string {
	var out []string
	for _, v := range append(q[name+"[]"], q[name]...) {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// queryHash identifies a query without its page parameter, so that a page
// token is honored only with the exact query that issued it.
func queryHash(q url.Values) string {
	c := url.Values{}
	for k, v := range q {
		if k != "page" {
			c[k] = v
		}
	}
	h := sha256.Sum256([]byte(c.Encode()))
	return hex.EncodeToString(h[:6])
}

func pageToken(q url.Values, offset int) string {
	return "page_" + base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d", queryHash(q), offset))
}

// pageOffset decodes q's page token; ok is false after it wrote a 400.
func pageOffset(w http.ResponseWriter, q url.Values) (int, bool) {
	tok := q.Get("page")
	if tok == "" {
		return 0, true
	}
	bad := func() (int, bool) {
		badRequest(w, "page", "invalid_request_error",
			"Invalid page token: it does not belong to this query. Repeat every other parameter exactly when paging.")
		return 0, false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(tok, "page_"))
	if err != nil {
		return bad()
	}
	hash, off, ok := strings.Cut(string(raw), ":")
	n, err := strconv.Atoi(off)
	if !ok || err != nil || n < 0 || hash != queryHash(q) {
		return bad()
	}
	return n, true
}

type bucket struct {
	Object    string `json:"object"`
	StartTime int64  `json:"start_time"`
	EndTime   int64  `json:"end_time"`
	Results   any    `json:"results"`
}

type page struct {
	Object   string   `json:"object"`
	Data     []bucket `json:"data"`
	HasMore  bool     `json:"has_more"`
	NextPage *string  `json:"next_page"`
}

func (s *Server) usageEndpoint(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("endpoint")
	dims := CompletionsGroupBy
	if name != "completions" {
		ep, ok := endpoints[name]
		if !ok {
			code := "not_found"
			writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error", Code: &code,
				Message: fmt.Sprintf("Unknown usage endpoint %q.", name)})
			return
		}
		dims = ep.dims
	}
	rq, ok := s.parseReport(w, r, dims)
	if !ok {
		return
	}
	q := r.URL.Query()
	if width := q.Get("bucket_width"); width != "" && width != "1d" {
		if width != "1h" && width != "1m" {
			badRequest(w, "bucket_width", "invalid_request_error", fmt.Sprintf("Invalid value for 'bucket_width': %q. Supported values are: '1m', '1h' and '1d'.", width))
			return
		}
		badRequest(w, "bucket_width", "invalid_request_error", "The simulator serves bucket_width '1d' only.")
		return
	}
	if rq.limit < 1 || rq.limit > 31 {
		badRequest(w, "limit", "invalid_request_error", fmt.Sprintf("Invalid limit provided: %d. Limit must be between 1 and 31 for bucket_width '1d'.", rq.limit))
		return
	}
	if slices.Contains(rq.groupBy, "api_key_id") && rq.start < s.cfg.KeyGroupingFloor {
		badRequest(w, "start_time", "invalid_request_error", fmt.Sprintf(
			"group_by=api_key_id is not available for this time range. Try a start_time on or after %d.", s.cfg.KeyGroupingFloor))
		return
	}
	f := Filter{ProjectIDs: arrayParam(q, "project_ids"), UserIDs: arrayParam(q, "user_ids"),
		APIKeyIDs: arrayParam(q, "api_key_ids"), Models: arrayParam(q, "models")}
	if b := q.Get("batch"); b != "" {
		v, err := strconv.ParseBool(b)
		if err != nil {
			badRequest(w, "batch", "invalid_type", "Invalid type for 'batch': expected a boolean.")
			return
		}
		f.Batch = &v
	}
	s.writeReport(w, rq, func(d int64) any {
		if name == "completions" {
			return s.org.completions(d, rq.now, rq.groupBy, f, s.first)
		}
		return s.org.usage(name, d, rq.now, rq.groupBy, s.first)
	})
}

// reportQuery is what every report endpoint (usage, costs) reads from its
// request: the window, the page size and position, the grouping.
type reportQuery struct {
	q               url.Values
	start, end, now int64
	limit           int
	offset          int
	groupBy         []string
}

// parseReport checks the parameters report endpoints share; ok is false
// after it wrote a 400. Each endpoint checks its own width and limit.
func (s *Server) parseReport(w http.ResponseWriter, r *http.Request, dims []string) (reportQuery, bool) {
	q := r.URL.Query()
	rq := reportQuery{q: q, now: s.cfg.Now().Unix()}
	if q.Get("start_time") == "" {
		badRequest(w, "start_time", "missing_required_parameter", "Missing required parameter: 'start_time'.")
		return rq, false
	}
	var ok bool
	if rq.start, ok = intParam(w, q, "start_time", 0); !ok {
		return rq, false
	}
	if rq.end, ok = intParam(w, q, "end_time", rq.now); !ok {
		return rq, false
	}
	limit, ok := intParam(w, q, "limit", 7)
	if !ok {
		return rq, false
	}
	rq.limit = int(limit)
	rq.groupBy = arrayParam(q, "group_by")
	for _, g := range rq.groupBy {
		if !slices.Contains(dims, g) {
			badRequest(w, "group_by", "invalid_request_error", fmt.Sprintf("Invalid value for 'group_by': %q. Supported values are: %s.", g, strings.Join(dims, ", ")))
			return rq, false
		}
	}
	if rq.offset, ok = pageOffset(w, q); !ok {
		return rq, false
	}
	return rq, true
}

// writeReport serves one page of daily buckets: every day from start's up
// to end (exclusive), none after today's, quiet days with no results.
func (s *Server) writeReport(w http.ResponseWriter, rq reportQuery, results func(day int64) any) {
	var days []int64
	for d := dayStart(rq.start); d < rq.end && d <= dayStart(rq.now); d += daySeconds {
		days = append(days, d)
	}
	p := page{Object: "page", Data: []bucket{}}
	if rq.offset < len(days) {
		stop := min(rq.offset+rq.limit, len(days))
		for _, d := range days[rq.offset:stop] {
			p.Data = append(p.Data, bucket{Object: "bucket", StartTime: d, EndTime: d + daySeconds, Results: results(d)})
		}
		if stop < len(days) {
			tok := pageToken(rq.q, stop)
			p.HasMore, p.NextPage = true, &tok
		}
	}
	writeJSON(w, http.StatusOK, p)
}
