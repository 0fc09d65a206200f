package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
)

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
			owner_kind, owner_id, project_id, absent, seq, name)`, func(add func(...any) error) error {
			for _, r := range idents {
				e := r.Event
				i, err := normalize.IdentityOf(e.Vendor, e.Key, r.Data)
				if err != nil {
					return fmt.Errorf("identity %s seq %d: %w", e.Tenant, e.Seq, err)
				}
				if err := add(e.Tenant, e.Vendor, i.Object, i.ID, i.SubjectKind, i.SubjectID, i.Email,
					i.OwnerKind, i.OwnerID, i.ProjectID, boolByte(i.Absent), e.Seq, i.Name); err != nil {
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
