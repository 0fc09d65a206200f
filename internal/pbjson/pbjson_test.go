package pbjson_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ogma-dev/ogma/internal/pbjson"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

var protoJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// same checks that Append writes m as protojson does, or declines.
func same(t *testing.T, m proto.Message) (written bool) {
	t.Helper()
	want, werr := protoJSON.Marshal(m)
	got, ok := pbjson.Append([]byte("prefix"), m)
	if !ok {
		if string(got) != "prefix" {
			t.Fatalf("%s: declined but wrote %q", m.ProtoReflect().Descriptor().FullName(), got)
		}
		return false
	}
	if werr != nil {
		t.Fatalf("%s: protojson fails (%v), Append wrote %s", m.ProtoReflect().Descriptor().FullName(), werr, got)
	}
	var compact bytes.Buffer // protojson's random spaces out
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	if got := string(got[len("prefix"):]); got != compact.String() {
		t.Fatalf("%s:\nAppend   %s\nprotojson %s", m.ProtoReflect().Descriptor().FullName(), got, compact.String())
	}
	return true
}

// TestEveryAnswerAsProtojsonWritesIt fills every message of the API at
// random — set and unset fields, empty and full lists and maps, strings
// that need escaping, extreme numbers — and compares Append with protojson.
func TestEveryAnswerAsProtojsonWritesIt(t *testing.T) {
	msgs := ogmav1.File_ogma_v1_ogma_proto.Messages()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range msgs.Len() {
		md := msgs.Get(i)
		written := 0
		for range 50 {
			m := dynamicpb.NewMessage(md)
			fill(rng, m, 3)
			if same(t, m) {
				written++
			}
		}
		if written == 0 {
			t.Errorf("%s: never written by Append", md.FullName())
		}
	}
	if !same(t, &ogmav1.UsageReport{}) {
		t.Error("an empty generated message declined")
	}
}

func TestDeclinesWhatProtojsonWritesOtherwise(t *testing.T) {
	for name, m := range map[string]proto.Message{
		"a well-known type":  structpb.NewStringValue("x"),
		"invalid UTF-8":      &ogmav1.UsageRow{EstimatedCostUsd: "\xff"},
		"invalid UTF-8 deep": &ogmav1.UsageReport{Rows: []*ogmav1.UsageRow{{}, {PriceVersion: "a\xc3"}}},
	} {
		if same(t, m) {
			t.Errorf("%s: written", name)
		}
	}
}

func TestStringsAndNumbers(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é€😀", "\u2028<>&", strings.Repeat("ab\n", 50)} {
		same(t, &ogmav1.UsageRow{Model: &s, EstimatedCostUsd: s})
	}
	for _, n := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		same(t, &ogmav1.UsageRow{InputTotal: n})
	}
}

// fill sets a random subset of m's fields, to depth messages deep.
func fill(rng *rand.Rand, m protoreflect.Message, depth int) {
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if rng.IntN(3) == 0 {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range rng.IntN(4) {
				if fd.Message() != nil {
					if depth == 0 {
						break
					}
					v := l.NewElement()
					fill(rng, v.Message(), depth-1)
					l.Append(v)
				} else {
					l.Append(scalar(rng, fd))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range rng.IntN(4) {
				k := scalar(rng, fd.MapKey()).MapKey()
				if fd.MapValue().Message() != nil {
					if depth == 0 {
						break
					}
					v := mp.NewValue()
					fill(rng, v.Message(), depth-1)
					mp.Set(k, v)
				} else {
					mp.Set(k, scalar(rng, fd.MapValue()))
				}
			}
		case fd.Message() != nil:
			if depth > 0 {
				fill(rng, m.Mutable(fd).Message(), depth-1)
			}
		default:
			m.Set(fd, scalar(rng, fd))
		}
	}
}

func scalar(rng *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	ints := []int64{0, 1, -7, 1 << 40, math.MaxInt64, math.MinInt64}
	floats := []float64{0, 0.25, -3.5e-9, 1e21, 123456.789, math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64}
	strs := []string{"", "gpt-6", "carol@example.com", "line\nbreak \"quoted\" \\", "\x01\x1f", "ünïcode 😀", "2026-11-01T00:00:00Z"}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 1)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(strs[rng.IntN(len(strs))])
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(strs[rng.IntN(len(strs))]))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(ints[rng.IntN(3)]))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(rng.Uint32())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(ints[rng.IntN(len(ints))])
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(rng.Uint64())
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(floats[rng.IntN(len(floats))]))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(floats[rng.IntN(len(floats))])
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(rng.IntN(vals.Len())).Number())
	}
	panic("no scalar of kind " + fd.Kind().String())
}

// BenchmarkUsagePage writes a 3,000-row usage answer, as the REST face
// does for a person × model quarter of a 1,000-user organization.
func BenchmarkUsagePage(b *testing.B) {
	resp := &ogmav1.UsageReport{}
	for range 3000 {
		model, person := "gpt-6-sol", "p_0123456789abcdef"
		resp.Rows = append(resp.Rows, &ogmav1.UsageRow{Model: &model, Person: &person, InputTotal: 123456789, Output: 98765,
			Requests: 4321, EstimatedCostUsd: "12.345678", PriceVersion: "2026-11-01"})
	}
	for _, enc := range []struct {
		name string
		fn   func() ([]byte, error)
	}{
		{"pbjson", func() ([]byte, error) { b, _ := pbjson.Append(nil, resp); return b, nil }},
		{"protojson", func() ([]byte, error) { return protoJSON.Marshal(resp) }},
	} {
		b.Run(enc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := enc.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
