package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sync"
)

// Health tracks whether every role in the process is ready, and what each
// reports wrong. The zero value has no roles and is ready; it is safe for
// concurrent use.
type Health struct {
	mu       sync.Mutex
	waiting  map[string]bool
	problems map[string][]string
	ready    chan struct{} // closed once nothing waits, after a first role
}

// Expect registers roles that will [Health.Add] themselves later as not
// ready yet, so that the process is not ready before they start.
func (h *Health) Expect(roles ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range roles {
		h.wait(r)
	}
}

// Add registers a role that is not ready yet and returns the function that
// marks it ready. Calling that function more than once is harmless.
func (h *Health) Add(role string) (ready func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.wait(role)
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.waiting, role)
		if len(h.waiting) == 0 {
			select {
			case <-h.ready:
			default:
				close(h.ready)
			}
		}
	}
}

func (h *Health) wait(role string) {
	if h.waiting == nil {
		h.waiting = map[string]bool{}
		h.ready = make(chan struct{})
	}
	h.waiting[role] = true
}

// Ready is closed once every role added or expected is ready. It must be
// called after the first [Health.Add] or [Health.Expect].
func (h *Health) Ready() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready
}

// Report sets what role finds wrong now, each problem a sentence an
// operator can act on; none clears it. A role with problems makes the
// process degraded.
func (h *Health) Report(role string, problems ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.problems == nil {
		h.problems = map[string][]string{}
	}
	if len(problems) == 0 {
		delete(h.problems, role)
		return
	}
	h.problems[role] = slices.Clone(problems)
}

// Waiting returns the roles not ready yet, sorted.
func (h *Health) Waiting() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.waiting))
}

// Problems returns each role's problems.
func (h *Health) Problems() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.problems)
}

// ServeHTTP answers 200 {"status":"ok"} once every role is ready and none
// reports a problem; 503 with the roles still waiting ("starting") or
// with each role's problems ("degraded") otherwise.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	waiting, problems := h.Waiting(), h.Problems()
	body := map[string]any{"status": "ok"}
	switch {
	case len(waiting) > 0:
		body = map[string]any{"status": "starting", "waiting": waiting}
	case len(problems) > 0:
		body = map[string]any{"status": "degraded"}
	}
	if len(problems) > 0 {
		body["problems"] = problems
	}
	if body["status"] != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(body)
}
