package api

import (
	"context"

	"github.com/ogma-dev/ogma/pipeline/control"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

// GetCapabilities reports the tenant's capability checklist per vendor, as
// the connectors observed it.
func (s *Server) GetCapabilities(ctx context.Context, _ *ogmav1.GetCapabilitiesRequest) (*ogmav1.Capabilities, error) {
	tenant := tenantOf(ctx)
	out := &ogmav1.Capabilities{Tenant: tenant}
	s.view.Read(func(st *control.State) {
		k := control.VendorKey{Tenant: tenant, Vendor: control.OpenAI}
		integ, ok := st.Integrations[k]
		if !ok {
			return
		}
		o := st.Observed[k]
		if o.Generation != integ.Generation {
			o = control.Observed{} // observations of a replaced key do not carry over
		}
		out.Openai = &ogmav1.OpenAICapabilities{
			Admin:            o.Admin && !st.KeyInvalid(k),
			Costs:            o.Costs,
			AuditLogs:        o.AuditLogs,
			ProjectUsers:     o.ProjectUsers,
			PerUserBreakdown: o.PerUserBreakdown,
		}
	})
	return out, nil
}
