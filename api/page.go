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

// parsePage sets q's offset and limit (one row past the page, to tell
// whether another follows).
func parsePage(q *clickhouse.UsageQuery, size int32, token string) error {
	switch {
	case size == 0:
		size = defaultPageSize
	case size < 0 || size > maxPageSize:
		return badRequest("page_size %d: want 1 to %d", size, maxPageSize)
	}
	q.Limit = int(size) + 1
	if token == "" {
		return nil
	}
	var p page
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil || p.Offset < 0 {
		return badRequest("page_token is not one this API gave")
	}
	if p.Query != fingerprint(*q) {
		return badRequest("page_token belongs to another query: keep every parameter but page_token as it was")
	}
	q.Offset = p.Offset
	return nil
}

// pageToken returns the token of the page of q starting at offset.
func pageToken(q clickhouse.UsageQuery, offset int) string {
	b, _ := json.Marshal(page{Offset: offset, Query: fingerprint(q)})
	return base64.RawURLEncoding.EncodeToString(b)
}

// fingerprint digests what a query asks, but its paging.
func fingerprint(q clickhouse.UsageQuery) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%s\x00%s\x00%s\x00%v\x00%d", q.Tenant, q.Start.Format(time.DateOnly), q.End.Format(time.DateOnly),
		q.Vendor, strings.Join(q.GroupBy, ","), q.Unattributed, q.Limit)
	for _, d := range slices.Sorted(maps.Keys(q.Filters)) {
		fmt.Fprintf(&b, "\x00%s=%s", d, strings.Join(q.Filters[d], ","))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}
