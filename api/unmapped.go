package api

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ogma-dev/ogma/pipeline/normalize"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

// ListUnmapped returns, per API key, the usage no vendor user or link
// attributes, with what the directory knows of the key; see the proto.
func (s *Server) ListUnmapped(ctx context.Context, req *ogmav1.ListUnmappedRequest) (*ogmav1.Unmapped, error) {
	q, err := parseWindow(tenantOf(ctx), req.GetStart(), req.GetEnd(), req.GetVendor())
	if err != nil {
		return nil, err
	}
	if s.usage == nil || s.identity == nil {
		return nil, status.Error(codes.Unavailable, "unmapped activity is not served by this process: no ClickHouse configured")
	}
	keys, through, complete, err := s.usage.UnmappedKeys(ctx, q)
	if err != nil {
		s.log.ErrorContext(ctx, "unmapped query failed", "tenant", q.Tenant, "err", err)
		return nil, queryFailed("unmapped activity")
	}
	subjects, err := s.identity.Subjects(ctx, q.Tenant)
	if err != nil {
		s.log.ErrorContext(ctx, "subjects query failed", "tenant", q.Tenant, "err", err)
		return nil, queryFailed("unmapped activity")
	}
	known := map[[2]string]int{}
	for i, sub := range subjects {
		if sub.Kind == normalize.SubjectAPIKey {
			known[[2]string{sub.Vendor, sub.ID}] = i
		}
	}
	out := &ogmav1.Unmapped{Keys: make([]*ogmav1.UnmappedKey, 0, len(keys)), CompleteThrough: completeThrough(through, complete)}
	for _, k := range keys {
		key := &ogmav1.UnmappedKey{Vendor: k.Vendor, ApiKey: k.APIKeyID, Projects: k.Projects, Attribution: k.Attribution,
			FirstSeen: k.FirstSeen.Format(time.DateOnly), LastSeen: k.LastSeen.Format(time.DateOnly),
			InputTotal: k.InputTokens, Output: k.OutputTokens, Requests: k.NumModelRequests,
			EstimatedCostUsd: k.EstimatedUSD.String(), Unpriced: k.Unpriced, Users: k.Users}
		if k.Attribution == "key_owner" && k.Person != "" {
			key.OwnerEmail, key.Person = k.Person, PersonID(q.Tenant, k.Person)
		}
		if i, ok := known[[2]string{k.Vendor, k.APIKeyID}]; ok {
			sub := subjects[i]
			key.InDirectory, key.Name, key.OwnerKind, key.OwnerId, key.Deleted = true, sub.Name, sub.OwnerKind, sub.OwnerID, sub.Absent
		}
		out.Keys = append(out.Keys, key)
	}
	return out, nil
}
