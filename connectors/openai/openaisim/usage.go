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
	q := r.URL.Query()
	now := s.cfg.Now().Unix()
	if q.Get("start_time") == "" {
		badRequest(w, "start_time", "missing_required_parameter", "Missing required parameter: 'start_time'.")
		return
	}
	start, ok := intParam(w, q, "start_time", 0)
	if !ok {
		return
	}
	end, ok := intParam(w, q, "end_time", now)
	if !ok {
		return
	}
	if width := q.Get("bucket_width"); width != "" && width != "1d" {
		if width != "1h" && width != "1m" {
			badRequest(w, "bucket_width", "invalid_request_error", fmt.Sprintf("Invalid value for 'bucket_width': %q. Supported values are: '1m', '1h' and '1d'.", width))
			return
		}
		badRequest(w, "bucket_width", "invalid_request_error", "The simulator serves bucket_width '1d' only.")
		return
	}
	limit, ok := intParam(w, q, "limit", 7)
	if !ok {
		return
	}
	if limit < 1 || limit > 31 {
		badRequest(w, "limit", "invalid_request_error", fmt.Sprintf("Invalid limit provided: %d. Limit must be between 1 and 31 for bucket_width '1d'.", limit))
		return
	}
	groupBy := arrayParam(q, "group_by")
	for _, g := range groupBy {
		if !slices.Contains(dims, g) {
			badRequest(w, "group_by", "invalid_request_error", fmt.Sprintf("Invalid value for 'group_by': %q. Supported values are: %s.", g, strings.Join(dims, ", ")))
			return
		}
	}
	if slices.Contains(groupBy, "api_key_id") && start < s.cfg.KeyGroupingFloor {
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
	offset, ok := pageOffset(w, q)
	if !ok {
		return
	}

	// Every daily bucket from start's day up to end (exclusive), none after
	// today's; quiet days come back with no results.
	var days []int64
	for d := dayStart(start); d < end && d <= dayStart(now); d += daySeconds {
		days = append(days, d)
	}
	p := page{Object: "page", Data: []bucket{}}
	if offset < len(days) {
		stop := min(offset+int(limit), len(days))
		for _, d := range days[offset:stop] {
			var results any = s.org.completions(d, now, groupBy, f, s.first)
			if name != "completions" {
				results = s.org.usage(name, d, now, groupBy, s.first)
			}
			p.Data = append(p.Data, bucket{Object: "bucket", StartTime: d, EndTime: d + daySeconds, Results: results})
		}
		if stop < len(days) {
			tok := pageToken(q, stop)
			p.HasMore, p.NextPage = true, &tok
		}
	}
	writeJSON(w, http.StatusOK, p)
}
