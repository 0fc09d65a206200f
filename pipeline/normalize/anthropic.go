package normalize

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Anthropic's records (../shared/vendor-apis.md §2): report rows with
// RFC 3339 buckets (the envelope carries them as Unix seconds), nested
// cache-write counts, a cost amount in cents as a decimal string, and
// directory objects identified by id — but workspace members, identified
// by their workspace and user.

func anthropic(r *envelope.Raw) (Fact, error) {
	return objectFact(r, func(m map[string]any) (string, error) {
		if r.Stream != "workspace_members" {
			id, _ := m["id"].(string)
			return id, nil
		}
		ws, _ := m["workspace_id"].(string)
		user, _ := m["user_id"].(string)
		if ws == "" || user == "" {
			return "", bad("workspace member without a workspace_id and a user_id")
		}
		return ws + "/" + user, nil
	})
}

// anthropicUsage reads a messages usage row. Input is counted whole, as
// OpenAI counts it: uncached + cache reads + both cache writes. The report
// has no request count; its web searches are calls.
func anthropicUsage(data []byte) (Usage, error) {
	var v struct {
		Uncached      int64 `json:"uncached_input_tokens"`
		CacheCreation struct {
			OneHour  int64 `json:"ephemeral_1h_input_tokens"`
			FiveMins int64 `json:"ephemeral_5m_input_tokens"`
		} `json:"cache_creation"`
		CacheRead   int64 `json:"cache_read_input_tokens"`
		Output      int64 `json:"output_tokens"`
		ServerTools struct {
			WebSearch int64 `json:"web_search_requests"`
		} `json:"server_tool_use"`
		Model       *string `json:"model"`
		AccountID   *string `json:"account_id"`
		WorkspaceID *string `json:"workspace_id"`
		APIKeyID    *string `json:"api_key_id"`
		ServiceTier *string `json:"service_tier"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return Usage{}, err
	}
	for _, n := range []int64{v.Uncached, v.CacheCreation.OneHour, v.CacheCreation.FiveMins, v.CacheRead, v.Output, v.ServerTools.WebSearch} {
		if n < 0 {
			return Usage{}, errors.New("a negative token count")
		}
	}
	return Usage{
		Model: str(v.Model), UserID: str(v.AccountID), ProjectID: str(v.WorkspaceID), APIKeyID: str(v.APIKeyID),
		ServiceTier:       str(v.ServiceTier),
		InputTokens:       v.Uncached + v.CacheCreation.FiveMins + v.CacheCreation.OneHour + v.CacheRead,
		InputCachedTokens: v.CacheRead,
		InputCacheWrite5m: v.CacheCreation.FiveMins,
		InputCacheWrite1h: v.CacheCreation.OneHour,
		OutputTokens:      v.Output,
		Calls:             v.ServerTools.WebSearch,
	}, nil
}

var hundred = decimal.NewFromInt(100)

// anthropicCost reads a cost row. Its amount is a decimal string in cents
// (vendor-api-notes.md C2: read as dollars it is 100× too much): parsed
// exactly, exponent forms too, and divided by 100.
func anthropicCost(data []byte) (Cost, error) {
	var v struct {
		Amount      *string `json:"amount"`
		Currency    string  `json:"currency"`
		Description *string `json:"description"`
		WorkspaceID *string `json:"workspace_id"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&v); err != nil {
		return Cost{}, err
	}
	if v.Amount == nil {
		return Cost{}, errors.New("no amount")
	}
	cents, err := decimal.NewFromString(strings.TrimSpace(*v.Amount))
	if err != nil {
		return Cost{}, fmt.Errorf("amount %q: not a decimal", *v.Amount)
	}
	return Cost{ProjectID: str(v.WorkspaceID), LineItem: str(v.Description), Amount: cents.Div(hundred),
		Currency: strings.ToLower(v.Currency)}, nil
}

// ActivityKey returns the key of a Claude Code row: {endpoint,
// bucket_start, bucket_width, group_set, actor, customer_type,
// terminal_type}. The actor is the hex SHA-256 of its type and its email
// or key name: keys stay in the chain for good, and an erased person's
// email must not.
func ActivityKey(spec stream.Spec, b *envelope.Bucket, groupSet []string, row map[string]any) ([]byte, error) {
	actor, _ := row["actor"].(map[string]any)
	kind, _ := actor["type"].(string)
	var who string
	switch kind {
	case "user_actor":
		who, _ = actor["email_address"].(string)
		who = strings.ToLower(who)
	case "api_actor":
		who, _ = actor["api_key_name"].(string)
	}
	if who == "" {
		return nil, bad("claude code row without a known actor")
	}
	h := sha256.Sum256([]byte(kind + ":" + who))
	k := map[string]any{
		"endpoint":     spec.Endpoint,
		"bucket_start": event.Time(time.Unix(b.Start, 0)),
		"bucket_width": b.Width,
		"group_set":    nonNil(groupSet),
		"actor":        hex.EncodeToString(h[:]),
	}
	for _, dim := range []string{"customer_type", "terminal_type"} {
		v, err := dimValue(row[dim])
		if err != nil {
			return nil, bad("dimension %s: %v", dim, err)
		}
		k[dim] = v
	}
	return mustCanonical(k)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
