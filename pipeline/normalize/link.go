package normalize

import (
	"encoding/json"
	"net/mail"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Links are Ogma's own stream: an operator's statement that a vendor subject
// (a vendor user or an API key) is a person. They enter ogma.raw like any
// vendor record, so the processor chains them in the same exactly-once loop.
const (
	// LinkVendor and LinkStream name the stream of manual links.
	LinkVendor = "ogma"
	LinkStream = "links"
)

// Subject kinds a link can name.
const (
	SubjectUser   = "user"
	SubjectAPIKey = "api_key"
)

// Link is the data of a link event: who said which vendor subject is which
// person, and when. An empty Email removes the link.
type Link struct {
	SubjectVendor string    `json:"subject_vendor"`
	SubjectKind   string    `json:"subject_kind"`
	SubjectID     string    `json:"subject_id"`
	Email         string    `json:"email"`
	LinkedBy      string    `json:"linked_by"`
	LinkedAt      time.Time `json:"linked_at"`
}

// IsLink reports whether stream is the stream of manual links.
func IsLink(vendor, stream string) bool { return vendor == LinkVendor && stream == LinkStream }

// Person returns the person an email names: the address, lower-cased,
// without a display name. It fails on anything that is not one address.
func Person(email string) (string, error) {
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != strings.TrimSpace(email) {
		return "", bad("email %q is not a single address", email)
	}
	return strings.ToLower(a.Address), nil
}

// Bounds of a link's fields: vendor ids are tens of bytes, an email at
// most 254. A link is an event like any other, and an event too large for
// the broker would stall its partition.
const (
	MaxSubjectID = 256
	MaxEmail     = 254
	MaxLinkedBy  = 256
)

// Check reports what is wrong with l, for the API and the deadletter.
func (l Link) Check() error {
	switch {
	case !isVendor(l.SubjectVendor):
		return bad("subject_vendor %q: want %s", l.SubjectVendor, strings.Join(stream.VendorNames(), " or "))
	case l.SubjectKind != SubjectUser && l.SubjectKind != SubjectAPIKey:
		return bad("subject_kind %q: want %s or %s", l.SubjectKind, SubjectUser, SubjectAPIKey)
	case l.SubjectID == "":
		return bad("subject_id is required")
	case len(l.SubjectID) > MaxSubjectID:
		return bad("subject_id is %d bytes, more than the %d a vendor id takes", len(l.SubjectID), MaxSubjectID)
	case len(l.Email) > MaxEmail:
		return bad("email is %d bytes, more than the %d an address takes", len(l.Email), MaxEmail)
	case l.LinkedBy == "" || l.LinkedAt.IsZero():
		return bad("linked_by and linked_at are required")
	case len(l.LinkedBy) > MaxLinkedBy:
		return bad("linked_by is %d bytes, more than %d", len(l.LinkedBy), MaxLinkedBy)
	}
	if l.Email == "" {
		return nil
	}
	p, err := Person(l.Email)
	if err != nil {
		return err
	}
	if p != l.Email {
		return bad("email %q is not lower-cased", l.Email)
	}
	return nil
}

// LinkKey returns the key of a link event: {subject_vendor, subject_kind,
// subject_id}.
func LinkKey(l Link) ([]byte, error) {
	return mustCanonical(map[string]any{"subject_vendor": l.SubjectVendor, "subject_kind": l.SubjectKind, "subject_id": l.SubjectID})
}

func link(r *envelope.Raw) (Fact, error) {
	if !IsLink(r.Vendor, r.Stream) {
		return Fact{}, bad("unknown %s stream %q", r.Vendor, r.Stream)
	}
	var l Link
	d := json.NewDecoder(strings.NewReader(string(r.Data)))
	d.DisallowUnknownFields()
	if err := d.Decode(&l); err != nil {
		return Fact{}, bad("link: %v", err)
	}
	if d.More() {
		return Fact{}, bad("link: trailing data after the object")
	}
	if err := l.Check(); err != nil {
		return Fact{}, err
	}
	data, err := canonical(l)
	if err != nil {
		return Fact{}, bad("link: %v", err)
	}
	key, err := LinkKey(l)
	if err != nil {
		return Fact{}, err
	}
	return Fact{Kind: event.Link, Key: key, Data: data, Digest: event.ContentDigest(data)}, nil
}

// LinkRecord returns the raw envelope of l, as the API publishes it.
func LinkRecord(tenant string, l Link) *envelope.Raw {
	data, _ := json.Marshal(l) // plain struct
	return &envelope.Raw{V: envelope.Version, Tenant: tenant, Vendor: LinkVendor, Stream: LinkStream,
		FetchedAt: l.LinkedAt, Salt: envelope.NewSalt(), Data: data}
}

func isVendor(name string) bool {
	_, ok := stream.VendorOf(name)
	return ok
}
