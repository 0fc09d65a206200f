package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/pipeline/capability"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

const (
	scopeUsage      = "api.usage.read"
	scopeManagement = "api.management.read"
	createAdminKey  = "Create an Admin key (sk-admin-…) at platform.openai.com → Settings → Organization → Admin keys; you need to be an Organization Owner."
)

// Probe asks every endpoint Ogma reads what key can do, reading one small
// page of each, and returns the checklist. A key that cannot read usage is
// a [*capability.ProbeError]: there would be nothing to audit. The key's prefix is only
// a hint; the vendor's answers decide.
func (c *Client) Probe(ctx context.Context, key seal.Secret, now time.Time) (capability.Checklist, error) {
	var cl capability.Checklist
	select {
	case c.probes <- struct{}{}:
		defer func() { <-c.probes }()
	case <-ctx.Done():
		return cl, capability.Refuse(capability.CodeVendorUnreachable, "Too many keys are being checked at once; try again.", ctx.Err())
	}
	week := strconv.FormatInt(now.UTC().Truncate(day).Add(-7*day).Unix(), 10)

	body, err := c.get(ctx, key, "/v1/organization/usage/completions", url.Values{
		"start_time": {week}, "bucket_width": {"1d"}, "limit": {"7"}, "group_by[]": {"user_id"}})
	if err != nil {
		return cl, c.refusal(key, err)
	}
	// An answer is not enough: the key works once a usage page comes back.
	var p usagePage
	if err := json.Unmarshal(body, &p); err != nil || p.Data == nil {
		return cl, capability.Refuse(capability.CodeVendorError, "The usage endpoint at "+c.base+" answered something other than a usage page; "+
			"check that it is OpenAI's API and try again.", fmt.Errorf("usage probe: not a usage page (%d bytes)", len(body)))
	}
	cl.Set(capability.Admin, true, "The usage endpoint answered: the key works.")
	if slices.ContainsFunc(p.Data, func(b usageBucket) bool {
		return slices.ContainsFunc(b.Results, hasUser)
	}) {
		cl.Set(capability.PerUserBreakdown, true, "Usage grouped by user came back with user ids, so per-user attribution works.")
	} else {
		cl.Set(capability.PerUserBreakdown, false, "Usage grouped by user came back without user ids in the last 7 days: activity is attributed to the API key holder and listed under Unmapped activity.")
	}

	if _, err := c.get(ctx, key, "/v1/organization/costs", url.Values{"start_time": {week}, "bucket_width": {"1d"}, "limit": {"7"}}); err != nil {
		cl.Set(capability.Costs, false, "The cost endpoint did not answer: "+reason(err))
	} else {
		cl.Set(capability.Costs, true, "The cost endpoint answered.")
	}

	if body, err := c.get(ctx, key, "/v1/organization/users", url.Values{"limit": {"1"}}); err != nil {
		cl.Set(capability.ProjectUsers, false, "The user list is not readable, so projects, users and keys are skipped: "+reason(err))
	} else {
		var l listPage
		if json.Unmarshal(body, &l) == nil && len(l.Data) > 0 && hasEmail(l.Data[0]) {
			cl.Set(capability.ProjectUsers, true, "The organization's users are readable, with their emails.")
		} else {
			cl.Set(capability.ProjectUsers, false, "The user list answered but holds no users with an email.")
		}
	}

	if body, err := c.get(ctx, key, "/v1/organization/audit_logs", url.Values{"limit": {"1"}}); err != nil {
		cl.Set(capability.AuditLogs, false, "The audit-log endpoint did not answer: "+reason(err))
	} else {
		var l listPage
		if json.Unmarshal(body, &l) == nil && len(l.Data) > 0 {
			cl.Set(capability.AuditLogs, false, "Audit events are available; this turns true once the first one is ingested.")
		} else {
			cl.Set(capability.AuditLogs, false, AuditEmptyReason)
		}
	}
	return cl, nil
}

// AuditEmptyReason says why audit_logs is false while the endpoint answers.
const AuditEmptyReason = "The audit-log endpoint is reachable but empty: audit logging is not enabled by an Owner (Settings → Data controls → Data retention → Audit logging), or the organization is not on Enterprise."

// refusal turns the usage probe's error into a [*capability.ProbeError].
func (c *Client) refusal(key seal.Secret, err error) error {
	var api *APIError
	switch {
	case errors.Is(err, ErrInvalidKey):
		return capability.Refuse(capability.CodeInvalidKey, "OpenAI rejected the key (invalid_api_key): it is malformed, revoked or was never issued. "+createAdminKey, err)
	case errors.As(err, &api) && len(api.MissingScopes) > 0:
		if !strings.HasPrefix(key.Reveal(), "sk-admin-") {
			return capability.Refuse(capability.CodeWrongKeyType, "This is a project or user API key, which cannot read organization usage, costs or audit logs. "+createAdminKey, err)
		}
		return capability.Refuse(capability.CodeInsufficientScope, "This Admin key cannot read usage (it lacks "+scopeUsage+"), so there is nothing to audit. Grant it read access to usage, or create an unrestricted read-only Admin key.", err)
	case errors.As(err, &api) && (api.Status == 401 || api.Status == 403):
		return capability.Refuse(capability.CodeWrongKeyType, "OpenAI refused the key for organization usage. "+createAdminKey, err)
	case errors.As(err, &api) && api.Status == 429:
		return capability.Refuse(capability.CodeVendorError, fmt.Sprintf("OpenAI is rate limiting this organization; try again in %s.", api.Backoff()), err)
	case errors.As(err, &api):
		return capability.Refuse(capability.CodeVendorError, fmt.Sprintf("OpenAI answered %d to the usage probe; try again later.", api.Status), err)
	case errors.Is(err, ErrRedirect):
		return capability.Refuse(capability.CodeVendorError, "The usage endpoint at "+c.base+" answered with a redirect, which a request carrying a key never follows; check that it is OpenAI's API.", err)
	case errors.Is(err, ErrTooLarge):
		return capability.Refuse(capability.CodeVendorError, "The usage endpoint at "+c.base+" answered more than any usage page holds; check that it is OpenAI's API.", err)
	}
	return capability.Refuse(capability.CodeVendorUnreachable, "OpenAI could not be reached at "+c.base+"; check the network and try again.", err)
}

// reason renders an error of a secondary probe as the rest of a sentence.
func reason(err error) string {
	var api *APIError
	if errors.As(err, &api) {
		if len(api.MissingScopes) > 0 {
			return "the key lacks " + strings.Join(api.MissingScopes, ", ") + "."
		}
		return fmt.Sprintf("OpenAI answered %d.", api.Status)
	}
	return "OpenAI could not be reached."
}
