package envelope

import "github.com/ogma-dev/ogma/pipeline/event"

// Deadletter is the value of an ogma.deadletter record: a raw record that
// could not be made into events, and why.
type Deadletter struct {
	Reason string       `json:"reason"`
	Source event.Source `json:"source"`
	Raw    string       `json:"raw"` // base64 of the record value
	// RawBytes is set when Raw holds only the start of a large record: the
	// record's full size.
	RawBytes int `json:"raw_bytes,omitempty"`
}
