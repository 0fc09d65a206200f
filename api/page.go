package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// Pages: a client asks for up to maxPageSize rows and gets a token for the
// rest, so that no answer outgrows the gateway's message limit.
const (
	defaultPageSize = 1000
	maxPageSize     = 10000
)

// page is what a page token holds: where the next page starts, and which
// query it belongs to (a token is refused by any other).
type page struct {
	Offset int    `json:"o"`
	Query  string `json:"q"`
}

// parsePage reads a page request of the query whose fingerprint is query:
// where the page starts, and how many rows to ask for (one past the page,
// to tell whether another follows).
func parsePage(size int32, token, query string) (offset, limit int, err error) {
	switch {
	case size == 0:
		size = defaultPageSize
	case size < 0 || size > maxPageSize:
		return 0, 0, badRequest("page_size %d: want 1 to %d", size, maxPageSize)
	}
	if token == "" {
		return 0, int(size) + 1, nil
	}
	var p page
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil || p.Offset < 0 {
		return 0, 0, badRequest("page_token is not one this API gave")
	}
	if p.Query != fingerprint(query, fmt.Sprint(size)) {
		return 0, 0, badRequest("page_token belongs to another query: keep every parameter but page_token as it was")
	}
	return p.Offset, int(size) + 1, nil
}

// pageToken returns the token of the page starting at offset of the query
// whose fingerprint is query, in pages of limit−1 rows.
func pageToken(query string, offset, limit int) string {
	b, _ := json.Marshal(page{Offset: offset, Query: fingerprint(query, fmt.Sprint(limit-1))})
	return base64.RawURLEncoding.EncodeToString(b)
}

// fingerprint digests what a query asks.
func fingerprint(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// usageQuery is the fingerprint of what a usage query asks, but its paging.
func usageQuery(q clickhouse.UsageQuery) string {
	parts := []string{q.Tenant, q.Start.Format(time.DateOnly), q.End.Format(time.DateOnly), q.Vendor, strings.Join(q.GroupBy, ","),
		fmt.Sprint(q.Unattributed)}
	for _, d := range slices.Sorted(maps.Keys(q.Filters)) {
		parts = append(parts, d+"="+strings.Join(q.Filters[d], ","))
	}
	return fingerprint(parts...)
}
