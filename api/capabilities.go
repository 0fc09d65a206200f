package api

import (
	"context"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/stream"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

// GetCapabilities reports the tenant's capability checklist per vendor, as
// the connectors observed it; a vendor without a key has no block.
func (s *Server) GetCapabilities(ctx context.Context, _ *ogmav1.GetCapabilitiesRequest) (*ogmav1.Capabilities, error) {
	tenant := tenantOf(ctx)
	out := &ogmav1.Capabilities{Tenant: tenant}
	s.view.Read(func(st *control.State) {
		observed := func(vendor string) (control.Observed, bool) {
			k := control.VendorKey{Tenant: tenant, Vendor: vendor}
			integ, ok := st.Integrations[k]
			if !ok {
				return control.Observed{}, false
			}
			o := st.Observed[k]
			if o.Generation != integ.Generation {
				o = control.Observed{} // observations of a replaced key do not carry over
			}
			o.Admin = o.Admin && !st.KeyInvalid(k)
			return o, true
		}
		if o, ok := observed(stream.OpenAI); ok {
			out.Openai = &ogmav1.OpenAICapabilities{
				Admin:            o.Admin,
				Costs:            o.Costs,
				AuditLogs:        o.AuditLogs,
				ProjectUsers:     o.ProjectUsers,
				PerUserBreakdown: o.PerUserBreakdown,
			}
		}
		if o, ok := observed(stream.Anthropic); ok {
			out.Anthropic = &ogmav1.AnthropicCapabilities{
				Admin:            o.Admin,
				Costs:            o.Costs,
				ClaudeCode:       o.ClaudeCode,
				PerUserBreakdown: o.PerUserBreakdown,
				Workspaces:       o.Workspaces,
			}
		}
	})
	return out, nil
}
