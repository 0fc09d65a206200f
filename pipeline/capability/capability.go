// Package capability holds what a vendor key is found to expose: the
// checklist a probe returns before anything is saved, its flags, and the
// stable codes of a key that cannot be connected. Every vendor's probe
// returns these types, so the API serves any vendor without knowing it.
package capability

// The flags of the checklists, by name. Each vendor's probe sets the ones
// its API can show; the README defines each by what makes it true.
const (
	Admin            = "admin"
	Costs            = "costs"
	AuditLogs        = "audit_logs"
	ProjectUsers     = "project_users"
	PerUserBreakdown = "per_user_breakdown"
	ClaudeCode       = "claude_code"
	Workspaces       = "workspaces"
)

// Flag is one line of the checklist: its value, and one sentence saying why.
type Flag struct {
	Value  bool   `json:"value"`
	Reason string `json:"reason"`
}

// Checklist is what a key exposes of an organization, flag by name. The
// zero Checklist is empty and ready to use.
type Checklist struct {
	flags map[string]Flag
	order []string
}

// Set sets the flag name, keeping the order flags were first set in.
func (c *Checklist) Set(name string, value bool, reason string) {
	if c.flags == nil {
		c.flags = map[string]Flag{}
	}
	if _, ok := c.flags[name]; !ok {
		c.order = append(c.order, name)
	}
	c.flags[name] = Flag{Value: value, Reason: reason}
}

// Get returns the flag name; ok is false for a flag never set.
func (c Checklist) Get(name string) (f Flag, ok bool) {
	f, ok = c.flags[name]
	return f, ok
}

// Names returns the names of the flags set, in the order first set.
func (c Checklist) Names() []string { return append([]string(nil), c.order...) }

// Stable codes of a key that cannot be connected.
const (
	// CodeWrongKeyType: a key of the wrong type (a project or inference
	// key where an admin key is needed).
	CodeWrongKeyType = "wrong_key_type"
	// CodeInvalidKey: the vendor does not know the key (revoked, malformed).
	CodeInvalidKey = "invalid_key"
	// CodeInsufficientScope: an admin key that cannot read usage.
	CodeInsufficientScope = "insufficient_scope"
	// CodeVendorUnreachable: the vendor could not be reached.
	CodeVendorUnreachable = "vendor_unreachable"
	// CodeVendorError: the vendor answered, but not with what it should.
	CodeVendorError = "vendor_error"
)

// ProbeError is a probe that cannot connect the key: Code is one of the
// stable codes, Message a sentence a person can act on.
type ProbeError struct {
	Code    string
	Message string
	Err     error
}

func (e *ProbeError) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the vendor error behind the refusal.
func (e *ProbeError) Unwrap() error { return e.Err }

// Unavailable reports whether the refusal is the vendor's, not the key's:
// trying again later may work.
func (e *ProbeError) Unavailable() bool {
	return e.Code == CodeVendorUnreachable || e.Code == CodeVendorError
}

// Refuse returns the refusal of a key: code, a sentence a person can act
// on, and the vendor error behind it.
func Refuse(code, message string, err error) *ProbeError {
	return &ProbeError{Code: code, Message: message, Err: err}
}
