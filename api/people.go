package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/topic"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// IdentityReader answers who-is-who; *clickhouse.Store is one.
type IdentityReader interface {
	Subjects(ctx context.Context, tenant string) ([]clickhouse.Subject, error)
	Links(ctx context.Context, tenant string) ([]clickhouse.LinkRow, error)
	Names(ctx context.Context, tenant, kind string) (map[[2]string]string, error)
}

// Links is what making manual links needs: they enter ogma.raw like any
// ingested record, so the processor chains them.
type Links struct {
	Layout topic.Layout
	// Publish writes records and waits until they are stored.
	Publish func(ctx context.Context, recs ...*kgo.Record) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Ledger, if set, says why the ClickHouse sink refuses a tenant's
	// events ("" when it does not): a link it would refuse is not
	// acknowledged. *clickhouse.Store is one.
	Ledger interface {
		Refusal(ctx context.Context, tenant string) (string, error)
	}
}

// PersonID returns the opaque id of a person (a lower-cased email) within
// a tenant; see [clickhouse.PersonID].
func PersonID(tenant, email string) string { return clickhouse.PersonID(tenant, email) }

// people groups the subjects by the person they are attributed to now
// (the rules are the store's: sinks/clickhouse/attribution.go), across
// vendors: a person is one lower-cased email.
func people(tenant string, subjects []clickhouse.Subject) []*ogmav1.Person {
	byEmail := map[string]*ogmav1.Person{}
	for _, s := range subjects {
		if s.Person == "" {
			continue
		}
		p, ok := byEmail[s.Person]
		if !ok {
			p = &ogmav1.Person{Id: PersonID(tenant, s.Person), Email: s.Person}
			byEmail[s.Person] = p
		}
		p.Subjects = append(p.Subjects, &ogmav1.Subject{Vendor: s.Vendor, Kind: s.Kind, Id: s.ID, Deleted: s.Absent,
			Attribution: s.Attribution, Linked: s.Linked})
	}
	out := make([]*ogmav1.Person, 0, len(byEmail))
	for _, p := range byEmail {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *ogmav1.Person) int { return strings.Compare(a.Email, b.Email) })
	return out
}

func (s *Server) people(ctx context.Context) ([]*ogmav1.Person, error) {
	if s.identity == nil {
		return nil, status.Error(codes.Unavailable, "people are not served by this process: no ClickHouse configured")
	}
	tenant := tenantOf(ctx)
	subjects, err := s.identity.Subjects(ctx, tenant)
	if err != nil {
		s.log.ErrorContext(ctx, "subjects query failed", "tenant", tenant, "err", err)
		return nil, queryFailed("people")
	}
	return people(tenant, subjects), nil
}

// ListPeople lists the tenant's people with their usage in the window;
// see the proto.
func (s *Server) ListPeople(ctx context.Context, req *ogmav1.ListPeopleRequest) (*ogmav1.People, error) {
	ps, err := s.peopleWithUsage(ctx, req.GetStart(), req.GetEnd())
	if err != nil {
		return nil, err
	}
	return &ogmav1.People{People: ps}, nil
}

// GetPerson returns one person; see the proto.
func (s *Server) GetPerson(ctx context.Context, req *ogmav1.GetPersonRequest) (*ogmav1.Person, error) {
	ps, err := s.peopleWithUsage(ctx, req.GetStart(), req.GetEnd())
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.Id == req.GetId() {
			return p, nil
		}
	}
	return nil, codeError(codes.NotFound, "not_found", fmt.Sprintf("No person has id %q.", req.GetId()))
}

// peopleWindow is the default window of a person's usage, before today.
const peopleWindow = 30 * 24 * time.Hour

// peopleWithUsage returns the people, each with their usage in the window
// from start to end (the 30 days before today when both are "").
func (s *Server) peopleWithUsage(ctx context.Context, start, end string) ([]*ogmav1.Person, error) {
	if start == "" && end == "" {
		today := s.now().UTC().Truncate(24 * time.Hour)
		start, end = today.Add(-peopleWindow).Format(time.DateOnly), today.Format(time.DateOnly)
	}
	q, err := parseWindow(tenantOf(ctx), start, end, "")
	if err != nil {
		return nil, err
	}
	ps, err := s.people(ctx)
	if err != nil || s.usage == nil {
		return ps, err
	}
	rows, costs, err := s.usageAndCosts(ctx, q, []string{"person", "vendor", "day", "project", "attribution"},
		[]string{"vendor", "day", "project"}, "people")
	if err != nil {
		return nil, err
	}
	byEmail := make(map[string]*ogmav1.Person, len(ps))
	for _, p := range ps {
		p.Start, p.End = start, end
		byEmail[p.Email] = p
	}
	for email, u := range attributeUsage(rows, costs) {
		if p, ok := byEmail[email]; ok {
			u.fill(p)
		}
	}
	return ps, nil
}

// PutLink publishes a link; see the proto.
func (s *Server) PutLink(ctx context.Context, req *ogmav1.PutLinkRequest) (*ogmav1.Link, error) {
	if err := plainText("subject_id", req.GetSubjectId()); err != nil {
		return nil, err
	}
	if err := plainText("email", req.GetEmail()); err != nil {
		return nil, err
	}
	email, err := normalize.Person(strings.TrimSpace(req.GetEmail()))
	if err != nil {
		return nil, badRequest("email %q is not a single email address", req.GetEmail())
	}
	return s.link(ctx, req.GetSubjectVendor(), req.GetSubjectKind(), req.GetSubjectId(), email, func() error {
		if req.GetForce() || s.identity == nil {
			return nil
		}
		known, err := s.knownSubject(ctx, req.GetSubjectVendor(), req.GetSubjectKind(), req.GetSubjectId())
		if err != nil || known {
			return err
		}
		return codeError(codes.NotFound, "unknown_subject", fmt.Sprintf(
			"The %s directory has no %s %q; link it anyway with \"force\": true (for example a key deleted before Ogma read the directory).",
			req.GetSubjectVendor(), req.GetSubjectKind(), req.GetSubjectId()))
	})
}

// DeleteLink publishes the removal of a link; see the proto.
func (s *Server) DeleteLink(ctx context.Context, req *ogmav1.DeleteLinkRequest) (*ogmav1.Link, error) {
	return s.link(ctx, req.GetSubjectVendor(), req.GetSubjectKind(), req.GetSubjectId(), "", func() error {
		if s.identity == nil {
			return nil
		}
		links, err := s.identity.Links(ctx, tenantOf(ctx))
		if err != nil {
			s.log.ErrorContext(ctx, "links query failed", "tenant", tenantOf(ctx), "err", err)
			return queryFailed("links")
		}
		if slices.ContainsFunc(links, func(l clickhouse.LinkRow) bool {
			return l.SubjectVendor == req.GetSubjectVendor() && l.SubjectKind == req.GetSubjectKind() && l.SubjectID == req.GetSubjectId()
		}) {
			return nil
		}
		return codeError(codes.NotFound, "not_found", fmt.Sprintf("No link is in force for %s %s %q.",
			req.GetSubjectVendor(), req.GetSubjectKind(), req.GetSubjectId()))
	})
}

// knownSubject reports whether the tenant's directory knows a subject.
func (s *Server) knownSubject(ctx context.Context, vendor, kind, id string) (bool, error) {
	subjects, err := s.identity.Subjects(ctx, tenantOf(ctx))
	if err != nil {
		s.log.ErrorContext(ctx, "subjects query failed", "tenant", tenantOf(ctx), "err", err)
		return false, queryFailed("links")
	}
	return slices.ContainsFunc(subjects, func(sub clickhouse.Subject) bool {
		return sub.Vendor == vendor && sub.Kind == kind && sub.ID == id
	}), nil
}

// plainText refuses control characters and bidirectional overrides in a
// field people will read: they can make one id or address look like
// another.
func plainText(field, v string) error {
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return badRequest("%s holds the character %U, a control or bidirectional override", field, r)
		}
	}
	return nil
}

// link publishes a link (a removal when email is ""), once l checks out,
// the ledger takes the tenant's events and precondition holds.
func (s *Server) link(ctx context.Context, vendor, kind, id, email string, precondition func() error) (*ogmav1.Link, error) {
	if s.links == nil {
		return nil, codeError(codes.Unavailable, "unavailable", "Links are not served by this process.")
	}
	now := time.Now
	if s.links.Now != nil {
		now = s.links.Now
	}
	tenant := tenantOf(ctx)
	l := normalize.Link{SubjectVendor: vendor, SubjectKind: kind, SubjectID: id, Email: email,
		LinkedBy: "token:" + tokenNameOf(ctx), LinkedAt: now().UTC().Truncate(time.Second)}
	if err := l.Check(); err != nil {
		var ne *normalize.Error
		if errors.As(err, &ne) {
			return nil, badRequest("%s", ne.Reason)
		}
		return nil, badRequest("%v", err)
	}
	if s.links.Ledger != nil {
		reason, err := s.links.Ledger.Refusal(ctx, tenant)
		switch {
		case err != nil:
			// Unknown: the link will reach the ledger unless it refuses.
			s.log.WarnContext(ctx, "refusal check failed", "tenant", tenant, "err", err)
		case reason != "":
			return nil, codeError(codes.FailedPrecondition, "tenant_refused",
				"The ledger refuses this tenant's events, so the link would never show: "+reason+". See /healthz.")
		}
	}
	if err := precondition(); err != nil {
		return nil, err
	}
	raw := normalize.LinkRecord(tenant, l)
	if err := s.links.Publish(ctx, s.links.Layout.Record(topic.Raw, tenant, []byte(raw.Key()), raw.Marshal())); err != nil {
		s.log.ErrorContext(ctx, "publish link failed", "tenant", tenant, "err", err)
		return nil, codeError(codes.Unavailable, "unavailable", "The link could not be recorded; try again.")
	}
	return linkOut(tenant, clickhouse.LinkRow{SubjectVendor: vendor, SubjectKind: kind, SubjectID: id, Email: email,
		LinkedBy: l.LinkedBy, LinkedAt: l.LinkedAt}), nil
}

func linkOut(tenant string, l clickhouse.LinkRow) *ogmav1.Link {
	out := &ogmav1.Link{SubjectVendor: l.SubjectVendor, SubjectKind: l.SubjectKind, SubjectId: l.SubjectID, Email: l.Email,
		LinkedBy: l.LinkedBy, LinkedAt: l.LinkedAt.UTC().Format(time.RFC3339), Seq: l.Seq}
	if l.Email != "" {
		out.Person = PersonID(tenant, l.Email)
	}
	return out
}

// ListLinks lists the links in force; see the proto.
func (s *Server) ListLinks(ctx context.Context, _ *ogmav1.ListLinksRequest) (*ogmav1.Links, error) {
	if s.identity == nil {
		return nil, status.Error(codes.Unavailable, "links are not served by this process: no ClickHouse configured")
	}
	tenant := tenantOf(ctx)
	rows, err := s.identity.Links(ctx, tenant)
	if err != nil {
		s.log.ErrorContext(ctx, "links query failed", "tenant", tenant, "err", err)
		return nil, queryFailed("links")
	}
	out := &ogmav1.Links{Links: make([]*ogmav1.Link, 0, len(rows))}
	for _, r := range rows {
		out.Links = append(out.Links, linkOut(tenant, r))
	}
	return out, nil
}
