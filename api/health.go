package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
)

// Health tracks whether every role in the process is ready. The zero value
// has no roles and is ready; it is safe for concurrent use.
type Health struct {
	mu      sync.Mutex
	waiting map[string]bool
}

// Add registers a role that is not ready yet and returns the function that
// marks it ready. Calling that function more than once is harmless.
func (h *Health) Add(role string) (ready func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting == nil {
		h.waiting = map[string]bool{}
	}
	h.waiting[role] = true
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.waiting, role)
	}
}

// Waiting returns the roles not ready yet, sorted.
func (h *Health) Waiting() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for r := range h.waiting {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// ServeHTTP answers 200 {"status":"ok"} once every role is ready, and 503
// with the roles still waiting before.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	waiting := h.Waiting()
	if len(waiting) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"status": "starting", "waiting": waiting})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"status": "ok"})
}
