package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/connectors/vendorhttp"
	"github.com/ogma-dev/ogma/pipeline/capability"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

const createAdminKey = "Create an Admin key (sk-ant-admin01-…) at console.anthropic.com → Settings → Admin keys; only organization admins can."

// Probe asks every endpoint Ogma reads what key can do, reading one small
// page of each, and returns the checklist. A key that cannot read the
// messages usage report is a [*capability.ProbeError]: there would be
// nothing to audit. Any org-level credential the Admin API accepts will do;
// the key's prefix only words the refusal.
func (c *Client) Probe(ctx context.Context, key seal.Secret, now time.Time) (capability.Checklist, error) {
	var cl capability.Checklist
	select {
	case c.probes <- struct{}{}:
		defer func() { <-c.probes }()
	case <-ctx.Done():
		return cl, capability.Refuse(capability.CodeVendorUnreachable, "Too many keys are being checked at once; try again.", ctx.Err())
	}
	today := now.UTC().Truncate(24 * time.Hour)
	week := today.Add(-7 * 24 * time.Hour).Format(time.RFC3339)

	body, err := c.get(ctx, key, "/v1/organizations/usage_report/messages", url.Values{
		"starting_at": {week}, "bucket_width": {"1d"}, "limit": {"7"}, "group_by[]": {"account_id"}})
	if err != nil {
		return cl, c.refusal(key, err)
	}
	var p reportPage
	if err := json.Unmarshal(body, &p); err != nil || p.Data == nil {
		return cl, capability.Refuse(capability.CodeVendorError, "The usage report at "+c.base+" answered something other than a usage page; "+
			"check that it is Anthropic's API and try again.", fmt.Errorf("usage probe: not a usage page (%d bytes)", len(body)))
	}
	cl.Set(capability.Admin, true, "The messages usage report answered: the key works.")
	if slices.ContainsFunc(p.Data, func(b reportBucket) bool { return slices.ContainsFunc(b.Results, hasAccount) }) {
		cl.Set(capability.PerUserBreakdown, true, "Usage grouped by account came back with account ids (OAuth traffic such as Claude Code), so that usage is attributed to its user.")
	} else {
		cl.Set(capability.PerUserBreakdown, false, "Usage grouped by account came back without account ids in the last 7 days: API-key traffic is attributed to each key's holder and listed under Unmapped activity.")
	}

	if _, err := c.get(ctx, key, "/v1/organizations/cost_report", url.Values{"starting_at": {week}, "limit": {"7"}}); err != nil {
		cl.Set(capability.Costs, false, "The cost report did not answer: "+reason(err))
	} else {
		cl.Set(capability.Costs, true, "The cost report answered.")
	}
	yesterday := today.Add(-24 * time.Hour).Format(time.DateOnly)
	if _, err := c.get(ctx, key, "/v1/organizations/usage_report/claude_code", url.Values{"starting_at": {yesterday}, "limit": {"1"}}); err != nil {
		cl.Set(capability.ClaudeCode, false, "The Claude Code report did not answer: "+reason(err))
	} else {
		cl.Set(capability.ClaudeCode, true, "The Claude Code report answered: per-person Claude Code activity is read.")
	}
	if _, err := c.get(ctx, key, "/v1/organizations/workspaces", url.Values{"limit": {"1"}}); err != nil {
		cl.Set(capability.Workspaces, false, "The workspace list is not readable, so workspaces and their members are skipped: "+reason(err))
	} else {
		cl.Set(capability.Workspaces, true, "The workspace list is readable.")
	}
	return cl, nil
}

// refusal turns the usage probe's error into a [*capability.ProbeError].
func (c *Client) refusal(key seal.Secret, err error) error {
	var api *APIError
	inference := strings.HasPrefix(key.Reveal(), "sk-ant-api")
	switch {
	case errors.As(err, &api) && (api.Status == http.StatusUnauthorized || api.Status == http.StatusForbidden) && inference:
		return capability.Refuse(capability.CodeWrongKeyType, "This is an API (inference) key, which cannot read organization usage or costs: "+
			"workspace keys do not work on the Admin API. "+createAdminKey, err)
	case errors.As(err, &api) && api.Type == "authentication_error":
		return capability.Refuse(capability.CodeInvalidKey, "Anthropic rejected the key (authentication_error): it is malformed, revoked or expired. "+createAdminKey, err)
	case errors.As(err, &api) && api.Type == "permission_error":
		return capability.Refuse(capability.CodeInsufficientScope, "This key cannot read the messages usage report (permission_error), so there is nothing to audit. "+
			"Use an Admin key, or an organization-level key of an admin.", err)
	case errors.As(err, &api) && api.Status == http.StatusNotFound:
		return capability.Refuse(capability.CodeWrongKeyType, "The Admin API is not available to this account: individual accounts and Claude Platform on AWS have none. "+createAdminKey, err)
	case errors.As(err, &api) && api.Status == http.StatusTooManyRequests:
		return capability.Refuse(capability.CodeVendorError, fmt.Sprintf("Anthropic is rate limiting this organization; try again in %s.", api.Backoff()), err)
	case errors.As(err, &api):
		return capability.Refuse(capability.CodeVendorError, fmt.Sprintf("Anthropic answered %d to the usage probe; try again later.", api.Status), err)
	case errors.Is(err, vendorhttp.ErrRedirect):
		return capability.Refuse(capability.CodeVendorError, "The usage report at "+c.base+" answered with a redirect, which a request carrying a key never follows; check that it is Anthropic's API.", err)
	case errors.Is(err, vendorhttp.ErrTooLarge):
		return capability.Refuse(capability.CodeVendorError, "The usage report at "+c.base+" answered more than any usage page holds; check that it is Anthropic's API.", err)
	}
	return capability.Refuse(capability.CodeVendorUnreachable, "Anthropic could not be reached at "+c.base+"; check the network and try again.", err)
}

// reason renders an error of a secondary probe as the rest of a sentence.
func reason(err error) string {
	var api *APIError
	if errors.As(err, &api) {
		if api.Type != "" {
			return fmt.Sprintf("Anthropic answered %d %s.", api.Status, api.Type)
		}
		return fmt.Sprintf("Anthropic answered %d.", api.Status)
	}
	return "Anthropic could not be reached."
}
