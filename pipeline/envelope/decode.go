package envelope

import (
	"github.com/ogma-dev/ogma/internal/jsonscan"
)

// The processor decodes every raw record; through encoding/json that was a
// quarter of its time. decodeFast reads the form [Raw.Marshal] writes —
// its members in struct order, no whitespace — directly; anything else it
// leaves to encoding/json. A fuzz test holds both paths to one result.

// A Decoder decodes raw records one after another. A string equal to the
// previous record's (tenant, stream, group set…) is shared with it instead
// of copied: in a run of one stream's records that saves most of the
// allocations. The records it returns must be treated as read-only. A
// Decoder is not safe for concurrent use.
type Decoder struct{ prev Raw }

// Decode is [Decode], sharing strings with the previous record.
func (d *Decoder) Decode(b []byte) (*Raw, error) {
	r, ok := decodeFast(b, &d.prev)
	if ok {
		d.prev = *r
	}
	return check(b, r, ok)
}

// decodeFast parses b as Raw.Marshal writes it, sharing strings equal to
// prev's; ok is false when b has another shape.
func decodeFast(b []byte, prev *Raw) (*Raw, bool) {
	s := jsonscan.Scanner{B: b}
	r := &Raw{}
	str := func(name string, dst *string, was string) bool {
		var ok bool
		if !s.Lit(name) {
			return false
		}
		*dst, ok = s.StringAs(was)
		return ok
	}
	num := func(name string, dst *int64) bool {
		var ok bool
		if !s.Lit(name) {
			return false
		}
		*dst, ok = s.Int()
		return ok
	}
	var v int64
	if !num(`{"v":`, &v) || !str(`,"tenant":`, &r.Tenant, prev.Tenant) || !str(`,"vendor":`, &r.Vendor, prev.Vendor) ||
		!str(`,"stream":`, &r.Stream, prev.Stream) || !str(`,"request":{"path":`, &r.Request.Path, prev.Request.Path) ||
		!str(`,"query":`, &r.Request.Query, prev.Request.Query) || !s.Lit(`},"fetched_at":`) {
		return nil, false
	}
	r.V = int(v)
	at, ok := s.Skip()
	if !ok || at[0] != '"' || r.FetchedAt.UnmarshalJSON(at) != nil || !str(`,"salt":`, &r.Salt, "") {
		return nil, false
	}
	if s.Lit(`,"bucket":`) {
		bk := &Bucket{}
		var rows, row int64
		width := ""
		if prev.Bucket != nil {
			width = prev.Bucket.Width
		}
		if !num(`{"start":`, &bk.Start) || !num(`,"end":`, &bk.End) || !str(`,"width":`, &bk.Width, width) ||
			!num(`,"rows":`, &rows) || !num(`,"row":`, &row) || !s.Lit("}") {
			return nil, false
		}
		bk.Rows, bk.Row = int(rows), int(row)
		r.Bucket = bk
	}
	if s.Lit(`,"group_set":[`) {
		var fresh []string // nil while every name so far is prev's at its place
		n := 0
		for ; !s.Lit("]"); n++ {
			if n > 0 && !s.Lit(",") {
				return nil, false
			}
			was := ""
			if n < len(prev.GroupSet) {
				was = prev.GroupSet[n]
			}
			g, ok := s.StringAs(was)
			if !ok {
				return nil, false
			}
			if fresh == nil && n < len(prev.GroupSet) && g == was {
				continue
			}
			if fresh == nil {
				fresh = append(make([]string, 0, n+1), prev.GroupSet[:n]...)
			}
			fresh = append(fresh, g)
		}
		switch {
		case fresh != nil:
			r.GroupSet = fresh
		case n == 0:
			r.GroupSet = []string{}
		default:
			r.GroupSet = prev.GroupSet[:n:n]
		}
	}
	if s.Lit(`,"snapshot":`) {
		sn := &Snapshot{}
		if !str(`{"id":`, &sn.ID, "") || !str(`,"marker":`, &sn.Marker, "") {
			return nil, false
		}
		var count int64
		if s.Peek(`,"count":`) && !num(`,"count":`, &count) {
			return nil, false
		}
		if !s.Lit("}") {
			return nil, false
		}
		sn.Count = int(count)
		r.Snapshot = sn
	}
	if s.Lit(`,"data":`) {
		data, ok := s.Skip()
		if !ok || !jsonscan.Valid(data) {
			return nil, false
		}
		r.Data = data // aliases b, as Decode documents
	}
	if !s.Lit("}") || !s.End() {
		return nil, false
	}
	return r, true
}
