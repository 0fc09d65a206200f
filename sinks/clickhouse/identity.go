package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
)

// identityRow is who a directory object names.
type identityRow struct {
	object, id                string
	subjectKind, subjectID    string
	email, ownerKind, ownerID string
	projectID                 string
	absent                    uint8
}

// subjectKinds maps a directory object to the kind of subject it names.
var subjectKinds = map[string]string{
	"user":            normalize.SubjectUser,
	"project_user":    normalize.SubjectUser,
	"project_api_key": normalize.SubjectAPIKey,
	"admin_api_key":   "admin_api_key",
	"service_account": "service_account",
	"project":         "project",
}

// parseIdentity reads an identity event: its key {object, id} and data,
// null for an absent revision.
func parseIdentity(key, data []byte) (identityRow, error) {
	var k struct{ Object, ID string }
	if err := json.Unmarshal(key, &k); err != nil {
		return identityRow{}, fmt.Errorf("key: %w", err)
	}
	r := identityRow{object: k.Object, id: k.ID, subjectKind: subjectKinds[k.Object], subjectID: k.ID}
	if r.subjectKind == "" {
		return identityRow{}, fmt.Errorf("unknown directory object %q", k.Object)
	}
	if k.Object == "project_user" {
		// A membership's id is project/user.
		r.projectID, r.subjectID, _ = strings.Cut(k.ID, "/")
	}
	if string(data) == "null" {
		r.absent = 1
		return r, nil
	}
	var v struct {
		Email *string `json:"email"`
		Owner *struct {
			Type string `json:"type"`
			ID   string `json:"id"` // admin keys name the user inline
			User *struct {
				ID    string  `json:"id"`
				Email *string `json:"email"`
			} `json:"user"`
			ServiceAccount *struct {
				ID string `json:"id"`
			} `json:"service_account"`
		} `json:"owner"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return identityRow{}, fmt.Errorf("data: %w", err)
	}
	email := func(p *string) string {
		if p == nil {
			return ""
		}
		return strings.ToLower(strings.TrimSpace(*p))
	}
	r.email = email(v.Email)
	if o := v.Owner; o != nil {
		r.ownerKind, r.ownerID = o.Type, o.ID
		switch {
		case o.User != nil:
			r.ownerID, r.email = o.User.ID, email(o.User.Email)
		case o.ServiceAccount != nil:
			r.ownerID = o.ServiceAccount.ID
		}
	}
	return r, nil
}

// insertIdentities projects identity and link events.
func (s *Sink) insertIdentities(ctx context.Context, events []*event.Record) error {
	var idents, links []*event.Record
	for _, r := range events {
		switch r.Event.Kind {
		case event.Identity:
			idents = append(idents, r)
		case event.Link:
			links = append(links, r)
		}
	}
	if len(idents) > 0 {
		err := s.store.batch(ctx, `INSERT INTO identities (tenant, vendor, object, id, subject_kind, subject_id, email,
			owner_kind, owner_id, project_id, absent, seq)`, func(add func(...any) error) error {
			for _, r := range idents {
				e := r.Event
				i, err := parseIdentity(e.Key, r.Data)
				if err != nil {
					return fmt.Errorf("identity %s seq %d: %w", e.Tenant, e.Seq, err)
				}
				if err := add(e.Tenant, e.Vendor, i.object, i.id, i.subjectKind, i.subjectID, i.email,
					i.ownerKind, i.ownerID, i.projectID, i.absent, e.Seq); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("insert identities: %w", err)
		}
	}
	if len(links) == 0 {
		return nil
	}
	err := s.store.batch(ctx, `INSERT INTO links (tenant, subject_vendor, subject_kind, subject_id, email, linked_by,
		linked_at, seq)`, func(add func(...any) error) error {
		for _, r := range links {
			var l normalize.Link
			if err := json.Unmarshal(r.Data, &l); err != nil {
				return fmt.Errorf("link %s seq %d: %w", r.Event.Tenant, r.Event.Seq, err)
			}
			if err := add(r.Event.Tenant, l.SubjectVendor, l.SubjectKind, l.SubjectID, l.Email, l.LinkedBy,
				l.LinkedAt.UTC().Truncate(time.Second), r.Event.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert links: %w", err)
	}
	return nil
}
