package openaisim

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
)

// endpoint describes a usage endpoint other than completions: its result
// object, the dimensions it groups by, and how its rows are made.
type endpoint struct {
	object string
	dims   []string // sorted
	// p is the chance that a key uses the endpoint on a day.
	p float64
	// row fills the dimensions (other than project, user, key) and the
	// numbers of one row.
	row func(r *rand.Rand) (dims map[string]string, numbers map[string]int64)
}

func pickOne(r *rand.Rand, from ...string) string { return from[r.IntN(len(from))] }

// endpoints are the usage endpoints of vendor-apis.md §1.3 besides
// completions.
var endpoints = map[string]endpoint{
	"embeddings": {"organization.usage.embeddings.result", []string{"api_key_id", "model", "project_id", "user_id"}, 0.3,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return map[string]string{"model": pickOne(r, "text-embedding-3-small", "text-embedding-3-large")},
				map[string]int64{"input_tokens": int64(1000 + r.IntN(90000)), "num_model_requests": int64(1 + r.IntN(50))}
		}},
	"moderations": {"organization.usage.moderations.result", []string{"api_key_id", "model", "project_id", "user_id"}, 0.1,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return map[string]string{"model": "omni-moderation-latest"},
				map[string]int64{"input_tokens": int64(100 + r.IntN(9000)), "num_model_requests": int64(1 + r.IntN(20))}
		}},
	"images": {"organization.usage.images.result", []string{"api_key_id", "model", "project_id", "size", "source", "user_id"}, 0.05,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return map[string]string{"model": "gpt-image-1", "size": pickOne(r, "1024x1024", "1024x1792"),
					"source": pickOne(r, "image.generation", "image.edit")},
				map[string]int64{"images": int64(1 + r.IntN(10)), "num_model_requests": int64(1 + r.IntN(10))}
		}},
	"audio_speeches": {"organization.usage.audio_speeches.result", []string{"api_key_id", "model", "project_id", "user_id"}, 0.05,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return map[string]string{"model": "gpt-4o-mini-tts"},
				map[string]int64{"characters": int64(100 + r.IntN(20000)), "num_model_requests": int64(1 + r.IntN(10))}
		}},
	"audio_transcriptions": {"organization.usage.audio_transcriptions.result", []string{"api_key_id", "model", "project_id", "user_id"}, 0.05,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return map[string]string{"model": "whisper-1"},
				map[string]int64{"seconds": int64(10 + r.IntN(3600)), "num_model_requests": int64(1 + r.IntN(10))}
		}},
	"vector_stores": {"organization.usage.vector_stores.result", []string{"project_id"}, 0.2,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return nil, map[string]int64{"usage_bytes": int64(1 << 20 * (1 + r.IntN(100)))}
		}},
	"code_interpreter_sessions": {"organization.usage.code_interpreter_sessions.result", []string{"project_id"}, 0.1,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return nil, map[string]int64{"num_sessions": int64(1 + r.IntN(5))}
		}},
	"file_search_calls": {"organization.usage.file_searches.result", []string{"api_key_id", "project_id", "user_id", "vector_store_id"}, 0.1,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return map[string]string{"vector_store_id": fmt.Sprintf("vs_%02d", r.IntN(5))},
				map[string]int64{"num_requests": int64(1 + r.IntN(40))}
		}},
	"web_search_calls": {"organization.usage.web_searches.result", []string{"api_key_id", "context_level", "model", "project_id", "user_id"}, 0.1,
		func(r *rand.Rand) (map[string]string, map[string]int64) {
			return map[string]string{"model": "gpt-6-sol", "context_level": pickOne(r, "low", "medium", "high")},
				map[string]int64{"num_model_requests": int64(1 + r.IntN(30)), "num_requests": int64(1 + r.IntN(30))}
		}},
}

type genericRow struct {
	dims    map[string]string
	numbers map[string]int64
}

// genericRows returns the full-day rows of an endpoint, from the seed, the
// endpoint and the day alone.
func (o *Org) genericRows(name string, day int64) []genericRow {
	ep := endpoints[name]
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(o.seed^h.Sum64(), uint64(day)))
	var rows []genericRow
	for _, k := range o.keys {
		if r.Float64() >= ep.p || (!o.keyExists(k, day) && !o.keyExists(k, day+daySeconds-1)) {
			continue
		}
		dims, nums := ep.row(r)
		if dims == nil {
			dims = map[string]string{}
		}
		dims["project_id"], dims["api_key_id"] = k.projectID, k.ID
		if k.Owner.User != nil && !o.noUsers {
			dims["user_id"] = k.Owner.User.ID
		}
		rows = append(rows, genericRow{dims, nums})
	}
	return rows
}

// Result is one row of a usage bucket of an endpoint other than
// completions, as a JSON object.
type Result map[string]any

// usage returns an endpoint's bucket for the day as of now, grouped by
// groupBy; now's own day is scaled by the part of it elapsed.
func (o *Org) usage(name string, day, now int64, groupBy []string, first int64) []Result {
	if day < first || day > now {
		return []Result{}
	}
	ep := endpoints[name]
	num, den := int64(1), int64(1)
	if now < day+daySeconds {
		num, den = now-day, daySeconds
	}
	groups := map[string]Result{}
	for _, row := range o.genericRows(name, day) {
		res := Result{"object": ep.object}
		var key strings.Builder
		for _, d := range ep.dims {
			if v, ok := row.dims[d]; ok && slices.Contains(groupBy, d) {
				res[d] = v
				key.WriteString(v)
			} else {
				res[d] = nil
			}
			key.WriteByte('|')
		}
		g, ok := groups[key.String()]
		if !ok {
			g = res
			for n := range row.numbers {
				g[n] = int64(0)
			}
			groups[key.String()] = g
		}
		for n, v := range row.numbers {
			g[n] = g[n].(int64) + v*num/den
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	out := make([]Result, 0, len(keys))
	for _, k := range keys {
		out = append(out, groups[k])
	}
	return out
}

// Usage returns the simulator's own bucket of a usage endpoint other than
// completions for the day starting at day, grouped by groupBy.
func (s *Server) Usage(endpoint string, day int64, groupBy []string) []Result {
	return s.org.usage(endpoint, day, s.cfg.Now().Unix(), groupBy, s.first)
}
