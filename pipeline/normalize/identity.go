package normalize

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Identity is who a directory object names, in every vendor's terms alike:
// the subject it is (a user, an API key, …), the email it gives, and for a
// key its holder.
type Identity struct {
	// Object and ID are the event key's.
	Object, ID string
	// SubjectKind is what the object is a subject of attribution as: user,
	// api_key, service_account, project, …; SubjectID its vendor id.
	SubjectKind, SubjectID string
	// Email is lower-cased: the user's own, or a key holder's when the
	// vendor gives it inline.
	Email string
	// OwnerKind (user or service_account) and OwnerID are a key's holder.
	OwnerKind, OwnerID string
	// ProjectID is a membership's project (OpenAI) or workspace (Anthropic).
	ProjectID string
	// Name is the object's name in the vendor's directory: a user's, a
	// key's, a project's or workspace's ("" when it has none).
	Name string
	// Absent: the revision says a complete walk no longer listed it.
	Absent bool
}

// subjectKinds maps each directory object of the catalogue to the kind of
// subject it names.
var subjectKinds = map[string]string{
	"user":             SubjectUser,
	"project_user":     SubjectUser,
	"workspace_member": SubjectUser,
	"project_api_key":  SubjectAPIKey,
	"api_key":          SubjectAPIKey,
	"admin_api_key":    "admin_api_key",
	"service_account":  "service_account",
	"project":          "project",
	"workspace":        "project",
	"invite":           "invite",
}

// IdentityOf reads an identity event of vendor: its key {object, id} and
// data, null for an absent revision.
func IdentityOf(vendor string, key, data []byte) (Identity, error) {
	var k struct{ Object, ID string }
	if err := json.Unmarshal(key, &k); err != nil {
		return Identity{}, fmt.Errorf("key: %w", err)
	}
	r := Identity{Object: k.Object, ID: k.ID, SubjectKind: subjectKinds[k.Object], SubjectID: k.ID}
	if r.SubjectKind == "" {
		return Identity{}, fmt.Errorf("unknown directory object %q", k.Object)
	}
	if k.Object == "project_user" || k.Object == "workspace_member" {
		// A membership's id is project/user.
		r.ProjectID, r.SubjectID, _ = strings.Cut(k.ID, "/")
	}
	if string(data) == "null" {
		r.Absent = true
		return r, nil
	}
	var err error
	switch vendor {
	case stream.OpenAI:
		err = openAIIdentity(&r, data)
	case stream.Anthropic:
		err = anthropicIdentity(&r, data)
	default:
		err = fmt.Errorf("identity of unknown vendor %q", vendor)
	}
	return r, err
}

// maxName bounds a directory name kept beside its subject: names are for
// people to read, not payloads.
const maxName = 256

func name(p *string) string {
	if p == nil {
		return ""
	}
	n := strings.TrimSpace(*p)
	if len(n) > maxName {
		n = strings.ToValidUTF8(n[:maxName], "")
	}
	return n
}

func email(p *string) string {
	if p == nil {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(*p))
}

// openAIIdentity reads a user's email, or a key's owner block: a user
// (with their email inline) or a service account.
func openAIIdentity(r *Identity, data []byte) error {
	var v struct {
		Email *string `json:"email"`
		Name  *string `json:"name"`
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
		return fmt.Errorf("data: %w", err)
	}
	r.Email, r.Name = email(v.Email), name(v.Name)
	if o := v.Owner; o != nil {
		r.OwnerKind, r.OwnerID = o.Type, o.ID
		switch {
		case o.User != nil:
			r.OwnerID, r.Email = o.User.ID, email(o.User.Email)
		case o.ServiceAccount != nil:
			r.OwnerID = o.ServiceAccount.ID
		}
	}
	return nil
}

// anthropicIdentity reads a user's or invite's email, or a key's holder:
// the principal it acts as when it has one (a personal or service-account
// key), else its creator — the only link from a classic workspace key to a
// person (vendor-apis.md §2.7). Anthropic gives no email with either; the
// holder's email is found through the users list when read.
func anthropicIdentity(r *Identity, data []byte) error {
	var v struct {
		Email     *string `json:"email"`
		Name      *string `json:"name"`
		Principal *struct {
			Type             string `json:"type"`
			UserID           string `json:"user_id"`
			ServiceAccountID string `json:"service_account_id"`
		} `json:"principal"`
		CreatedBy *struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"created_by"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	r.Email, r.Name = email(v.Email), name(v.Name)
	switch p := v.Principal; {
	case p != nil && p.Type == "user_actor" && p.UserID != "":
		r.OwnerKind, r.OwnerID = "user", p.UserID
	case p != nil && p.Type == "service_account_actor":
		r.OwnerKind, r.OwnerID = "service_account", p.ServiceAccountID
	case v.CreatedBy != nil && v.CreatedBy.ID != "":
		r.OwnerKind, r.OwnerID = v.CreatedBy.Type, v.CreatedBy.ID
	}
	return nil
}
