package normalize

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Audit is what the audit log projection keeps of an audit event: who did
// what, when, in which project, to what.
type Audit struct {
	Type        string
	EffectiveAt time.Time
	// ActorType is session or api_key; ActorID the user's id (a session)
	// or the key's tracking id; ActorEmail the user's, lower-cased, when
	// the event names one.
	ActorType, ActorID, ActorEmail string
	// ProjectID and ProjectName: the project the action was scoped to, if
	// any.
	ProjectID, ProjectName string
	// ResourceID is the id of what the action was done to (the payload
	// named after the event type), if it has one.
	ResourceID string
}

// AuditOf reads an audit event of vendor. Only the event's own JSON must
// be valid: a field of another shape is left empty, so one odd event
// never stops the projection (the ledger keeps it whole).
func AuditOf(vendor string, data []byte) (Audit, error) {
	if vendor != stream.OpenAI {
		return Audit{}, fmt.Errorf("audit event of %s: no audit log of that vendor", vendor)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Audit{}, fmt.Errorf("audit event: %w", err)
	}
	var a Audit
	var at int64
	json.Unmarshal(raw["type"], &a.Type)
	json.Unmarshal(raw["effective_at"], &at)
	a.EffectiveAt = time.Unix(at, 0).UTC()
	var project struct{ ID, Name string }
	json.Unmarshal(raw["project"], &project)
	a.ProjectID, a.ProjectName = project.ID, name(&project.Name)
	var actor struct {
		Type    string `json:"type"`
		Session struct {
			User struct {
				ID    string  `json:"id"`
				Email *string `json:"email"`
			} `json:"user"`
		} `json:"session"`
		APIKey struct {
			ID   string `json:"id"`
			User struct {
				Email *string `json:"email"`
			} `json:"user"`
		} `json:"api_key"`
	}
	json.Unmarshal(raw["actor"], &actor)
	switch a.ActorType = actor.Type; actor.Type {
	case "session":
		a.ActorID, a.ActorEmail = actor.Session.User.ID, email(actor.Session.User.Email)
	case "api_key":
		a.ActorID, a.ActorEmail = actor.APIKey.ID, email(actor.APIKey.User.Email)
	}
	var payload struct{ ID string }
	if a.Type != "" {
		json.Unmarshal(raw[a.Type], &payload)
	}
	a.ResourceID = payload.ID
	return a, nil
}
