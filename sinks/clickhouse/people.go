package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
)

// Subject is a vendor user or API key as the identity tables know it now,
// with the person the attribution rules give it (attribution.go).
type Subject struct {
	Vendor, Kind, ID string
	// Person is the lower-cased email the subject is attributed to; ""
	// when none. Attribution is user (the vendor named the user, or a link
	// says who holds the key), key_owner (the key's holder, inferred) or
	// unmapped.
	Person, Attribution string
	// Linked: a manual link decides the person.
	Linked bool
	// OwnerKind is a key's holder: user or service_account; OwnerID its id.
	OwnerKind, OwnerID string
	// Name is the subject's name in the vendor's directory, if any.
	Name string
	// Absent: the last complete directory walk did not list it.
	Absent bool
}

// Subjects returns every user and API key of tenant.
func (s *Store) Subjects(ctx context.Context, tenant string) ([]Subject, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var dir []subjectRow
	links := map[[3]string]string{}
	var g errgroup.Group
	g.Go(func() error {
		return s.each(ctx, directoryOf(tenant), func(scan func(...any) error) error {
			var r subjectRow
			var absent uint8
			if err := scan(&r.Vendor, &r.Kind, &r.ID, &r.directory, &r.OwnerKind, &r.OwnerID, &r.Name, &absent); err != nil {
				return err
			}
			r.Absent = absent == 1
			dir = append(dir, r)
			return nil
		})
	})
	g.Go(func() error {
		return s.each(ctx, linksOf(tenant), func(scan func(...any) error) error {
			var k [3]string
			var email string
			if err := scan(&k[0], &k[1], &k[2], &email); err != nil {
				return err
			}
			links[k] = email
			return nil
		})
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("subjects query: %w", err)
	}
	for i := range dir {
		k := [3]string{dir[i].Vendor, dir[i].Kind, dir[i].ID}
		dir[i].linked = links[k]
		delete(links, k)
	}
	for k, email := range links { // linked, and not (yet) in the directory
		dir = append(dir, subjectRow{Subject: Subject{Vendor: k[0], Kind: k[1], ID: k[2]}, linked: email})
	}
	slices.SortFunc(dir, func(a, b subjectRow) int {
		return cmp.Or(cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	return people(dir), nil
}

// each runs q and calls row for each of its rows, with what scans it.
func (s *Store) each(ctx context.Context, q query, row func(scan func(...any) error) error) error {
	rows, err := s.conn.Query(ctx, q.text, q.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Names returns the directory's name of each subject of kind (a
// normalize.Subject… kind, or "project" for projects and workspaces) of
// tenant, by vendor and id; subjects without a name are left out.
func (s *Store) Names(ctx context.Context, tenant, kind string) (map[[2]string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT vendor, subject_id, argMax(name, seq) AS n FROM identities
		WHERE tenant = ? AND subject_kind = ? AND name != '' GROUP BY vendor, subject_id`, tenant, kind)
	if err != nil {
		return nil, fmt.Errorf("names query: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]string{}
	for rows.Next() {
		var vendor, id, name string
		if err := rows.Scan(&vendor, &id, &name); err != nil {
			return nil, fmt.Errorf("names query: %w", err)
		}
		out[[2]string{vendor, id}] = name
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
