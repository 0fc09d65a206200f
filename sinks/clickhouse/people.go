package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// Subject is a vendor subject — a user, an API key, a service account — as
// the identity tables know it now.
type Subject struct {
	Vendor, Kind, ID string
	// LinkedEmail is the email of the link in force; "" when none.
	LinkedEmail string
	// DirectoryEmail is the last email the vendor's directory gave: the
	// user's own, or for a key its owner's. A deleted subject keeps it.
	DirectoryEmail string
	// OwnerKind is a key's owner: user or service_account; OwnerID its id.
	OwnerKind, OwnerID string
	// Absent: the last complete directory walk did not list it.
	Absent bool
}

// Subjects returns every subject of tenant.
func (s *Store) Subjects(ctx context.Context, tenant string) ([]Subject, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT vendor, subject_kind, subject_id, linked_email, directory_email, owner_kind, owner_id, absent
		FROM subjects WHERE tenant = ? ORDER BY vendor, subject_kind, subject_id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("subjects query: %w", err)
	}
	defer rows.Close()
	var out []Subject
	for rows.Next() {
		var sub Subject
		var absent uint8
		if err := rows.Scan(&sub.Vendor, &sub.Kind, &sub.ID, &sub.LinkedEmail, &sub.DirectoryEmail, &sub.OwnerKind, &sub.OwnerID, &absent); err != nil {
			return nil, fmt.Errorf("subjects query: %w", err)
		}
		sub.Absent = absent == 1
		out = append(out, sub)
	}
	return out, rows.Err()
}

// LinkRow is a link in force, as the ledger has it.
type LinkRow struct {
	SubjectVendor, SubjectKind, SubjectID string
	Email, LinkedBy                       string
	LinkedAt                              time.Time
	Seq                                   uint64
}

// Links returns tenant's links in force: each subject's latest link event,
// unless it removed the link.
func (s *Store) Links(ctx context.Context, tenant string) ([]LinkRow, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT subject_vendor, subject_kind, subject_id, argMax(email, seq) AS e,
			argMax(linked_by, seq), argMax(linked_at, seq), max(seq)
		FROM links WHERE tenant = ? GROUP BY subject_vendor, subject_kind, subject_id
		HAVING e != '' ORDER BY subject_vendor, subject_kind, subject_id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("links query: %w", err)
	}
	defer rows.Close()
	var out []LinkRow
	for rows.Next() {
		var l LinkRow
		if err := rows.Scan(&l.SubjectVendor, &l.SubjectKind, &l.SubjectID, &l.Email, &l.LinkedBy, &l.LinkedAt, &l.Seq); err != nil {
			return nil, fmt.Errorf("links query: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
