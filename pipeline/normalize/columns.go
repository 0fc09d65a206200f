package normalize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/ogma-dev/ogma/internal/jsonscan"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// The canonical columns of the ledger's projections: what every vendor's
// usage and cost rows come to, read by each vendor's parser beside its
// normalizer, so the sink and the verifier know no vendor's field names.

// Usage is what the projections keep of a usage row.
type Usage struct {
	Model, UserID, ProjectID, APIKeyID, Batch, ServiceTier string
	// InputTokens counts every input token: uncached, cache reads and
	// cache writes.
	InputTokens int64
	// InputCachedTokens counts the input tokens read from the cache.
	InputCachedTokens int64
	// InputCacheWrite5m and InputCacheWrite1h count the input tokens
	// written to the cache, by how long it keeps them: Anthropic's two
	// ephemeral caches; OpenAI reports one count of writes, kept as 5m.
	InputCacheWrite5m, InputCacheWrite1h int64
	OutputTokens                         int64
	// NumModelRequests counts requests, where the vendor reports them
	// (Anthropic's usage report does not: 0).
	NumModelRequests int64
	// The units of usage that is not tokens, each where its endpoint
	// reports it: images generated; characters spoken (TTS); seconds
	// transcribed; bytes stored (a vector store's size on the day, so a
	// sum over days is byte-days, the unit storage is billed in);
	// sessions (code interpreter); calls (file and web search tools —
	// OpenAI's num_requests, Anthropic's web_search_requests).
	Images, Characters, Seconds, Bytes, Sessions, Calls int64
}

// Cost is what the projections keep of a billed cost row.
type Cost struct {
	// ProjectID is the project (OpenAI) or workspace (Anthropic) billed;
	// "" for the default workspace.
	ProjectID string
	// LineItem is the vendor's line item or description.
	LineItem string
	// Amount is exact, in Currency's major unit (dollars).
	Amount decimal.Decimal
	// Currency is lower-case ("usd").
	Currency string
}

// UsageColumns reads a usage row of vendor into the canonical columns.
func UsageColumns(vendor string, data []byte) (Usage, error) {
	switch vendor {
	case stream.OpenAI:
		return openAIUsage(data)
	case stream.Anthropic:
		return anthropicUsage(data)
	}
	return Usage{}, fmt.Errorf("usage of unknown vendor %q", vendor)
}

// BillsTokens reports whether a billed cost's line item (OpenAI's
// line_item, Anthropic's description) bills tokens — input, output, cache
// reads or writes — rather than something usage does not count in tokens
// (fine-tuning, storage, search, code execution, sessions).
func BillsTokens(vendor, lineItem string) bool {
	l := strings.ToLower(lineItem)
	switch vendor {
	case stream.OpenAI:
		// "gpt-6-sol, input", "gpt-4o, cached input", "gpt-6-sol, output"
		_, kind, ok := strings.Cut(l, ", ")
		return ok && (strings.Contains(kind, "input") || strings.Contains(kind, "output"))
	case stream.Anthropic:
		// "Claude Opus 4.6 Usage - Input Tokens", "… - Cache Write (5m)"
		return strings.Contains(l, "tokens") || strings.Contains(l, "cache read") || strings.Contains(l, "cache write")
	}
	return false
}

// CostColumns reads a cost row of vendor into the canonical columns.
func CostColumns(vendor string, data []byte) (Cost, error) {
	switch vendor {
	case stream.OpenAI:
		return openAICost(data)
	case stream.Anthropic:
		return anthropicCost(data)
	}
	return Cost{}, fmt.Errorf("cost of unknown vendor %q", vendor)
}

// openAICost reads an OpenAI cost result, its amount (dollars, a JSON
// number) exactly from the JSON text.
func openAICost(data []byte) (Cost, error) {
	var v struct {
		ProjectID *string `json:"project_id"`
		LineItem  *string `json:"line_item"`
		Amount    struct {
			Value    json.Number `json:"value"`
			Currency string      `json:"currency"`
		} `json:"amount"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return Cost{}, err
	}
	amount, err := decimal.NewFromString(v.Amount.Value.String())
	if err != nil {
		return Cost{}, fmt.Errorf("amount %q: %w", v.Amount.Value, err)
	}
	c := Cost{Amount: amount, Currency: strings.ToLower(v.Amount.Currency)}
	if v.ProjectID != nil {
		c.ProjectID = *v.ProjectID
	}
	if v.LineItem != nil {
		c.LineItem = *v.LineItem
	}
	return c, nil
}

// openAIUsage reads an OpenAI usage row's columns: directly when the row is
// flat and canonical, as the processor writes it, else through
// encoding/json, whose result the direct path matches (FuzzOpenAIUsage).
// OpenAI's input_tokens already count its cached tokens.
func openAIUsage(data []byte) (Usage, error) {
	if u, ok := openAIUsageFlat(data); ok {
		return u, nil
	}
	return openAIUsageJSON(data)
}

// usageStrings and usageInts are the columns of a usage row, by field.
var (
	usageStrings = map[string]func(*Usage) *string{
		"model": func(u *Usage) *string { return &u.Model }, "user_id": func(u *Usage) *string { return &u.UserID },
		"project_id": func(u *Usage) *string { return &u.ProjectID }, "api_key_id": func(u *Usage) *string { return &u.APIKeyID },
		"service_tier": func(u *Usage) *string { return &u.ServiceTier },
	}
	usageInts = map[string]func(*Usage) *int64{
		"input_tokens": func(u *Usage) *int64 { return &u.InputTokens }, "input_cached_tokens": func(u *Usage) *int64 { return &u.InputCachedTokens },
		"output_tokens": func(u *Usage) *int64 { return &u.OutputTokens }, "num_model_requests": func(u *Usage) *int64 { return &u.NumModelRequests },
		"input_cache_write_tokens": func(u *Usage) *int64 { return &u.InputCacheWrite5m },
		"images":                   func(u *Usage) *int64 { return &u.Images }, "characters": func(u *Usage) *int64 { return &u.Characters },
		"seconds": func(u *Usage) *int64 { return &u.Seconds }, "usage_bytes": func(u *Usage) *int64 { return &u.Bytes },
		"num_sessions": func(u *Usage) *int64 { return &u.Sessions }, "num_requests": func(u *Usage) *int64 { return &u.Calls },
	}
)

func openAIUsageFlat(data []byte) (Usage, bool) {
	var buf [24]jsonscan.Member
	members, ok := jsonscan.Flat(data, buf[:0])
	if !ok {
		return Usage{}, false
	}
	return openAIUsageMembers(members)
}

// openAIUsageMembers reads the columns of a flat row's members; ok is false
// where encoding/json's rules decide.
func openAIUsageMembers(members []jsonscan.Member) (Usage, bool) {
	var u Usage
	ok := readOpenAIUsage(members, &u)
	return u, ok
}

// readOpenAIUsage reads the columns of a flat row's members into u, or
// only checks that it can when u is nil (a copy of each string column
// costs more than the check); false where encoding/json's rules decide.
func readOpenAIUsage(members []jsonscan.Member, u *Usage) bool {
	for _, m := range members {
		name, v := string(m.Name), m.Value
		if f, ok := usageStrings[name]; ok {
			switch v[0] {
			case '"':
				if u != nil {
					*f(u) = string(v[1 : len(v)-1])
				}
			case 'n':
				if u != nil {
					*f(u) = ""
				}
			default:
				return false
			}
			continue
		}
		if f, ok := usageInts[name]; ok {
			switch v[0] {
			case 'n':
				// null leaves the column as it is, as with encoding/json
			case '"', 't', 'f':
				return false
			default:
				n, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil {
					return false
				}
				if u != nil {
					*f(u) = n
				}
			}
			continue
		}
		switch {
		case name == "batch" && (v[0] == 't' || v[0] == 'f'):
			if u != nil {
				u.Batch = string(v)
			}
		case name == "batch" && v[0] == 'n':
			if u != nil {
				u.Batch = ""
			}
		case name == "batch" || knownUsageField(name):
			return false // another type, or another case: encoding/json's rules
		}
	}
	return true
}

// knownUsageField reports whether name matches a usage field only without
// regard to case, as encoding/json matches it.
func knownUsageField(name string) bool {
	if lowerASCII(name) {
		return false // the field names are: only the same name would match
	}
	for f := range usageStrings {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	for f := range usageInts {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	return strings.EqualFold("batch", name)
}

// lowerASCII reports whether s holds no upper-case letter and no byte
// outside ASCII.
func lowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

func openAIUsageJSON(data []byte) (Usage, error) {
	var v struct {
		Model             *string `json:"model"`
		UserID            *string `json:"user_id"`
		ProjectID         *string `json:"project_id"`
		APIKeyID          *string `json:"api_key_id"`
		Batch             *bool   `json:"batch"`
		ServiceTier       *string `json:"service_tier"`
		InputTokens       int64   `json:"input_tokens"`
		InputCachedTokens int64   `json:"input_cached_tokens"`
		InputCacheWrite   int64   `json:"input_cache_write_tokens"`
		OutputTokens      int64   `json:"output_tokens"`
		NumModelRequests  int64   `json:"num_model_requests"`
		Images            int64   `json:"images"`
		Characters        int64   `json:"characters"`
		Seconds           int64   `json:"seconds"`
		Bytes             int64   `json:"usage_bytes"`
		Sessions          int64   `json:"num_sessions"`
		Calls             int64   `json:"num_requests"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return Usage{}, err
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	u := Usage{Model: str(v.Model), UserID: str(v.UserID), ProjectID: str(v.ProjectID), APIKeyID: str(v.APIKeyID),
		ServiceTier: str(v.ServiceTier), InputTokens: v.InputTokens, InputCachedTokens: v.InputCachedTokens, InputCacheWrite5m: v.InputCacheWrite,
		OutputTokens: v.OutputTokens, NumModelRequests: v.NumModelRequests,
		Images: v.Images, Characters: v.Characters, Seconds: v.Seconds, Bytes: v.Bytes, Sessions: v.Sessions, Calls: v.Calls}
	if v.Batch != nil {
		u.Batch = fmt.Sprint(*v.Batch)
	}
	return u, nil
}
