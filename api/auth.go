package api

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/ogma-dev/ogma/pipeline/control"
)

type tenantKey struct{}

type tokenNameKey struct{}

// tokenNameOf returns the name of the token the call was authenticated
// with: who made a change.
func tokenNameOf(ctx context.Context) string {
	n, _ := ctx.Value(tokenNameKey{}).(string)
	return n
}

// tenantOf returns the tenant the call was authenticated as.
func tenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// public lists the gRPC services that need no token.
var public = []string{"/grpc.health.v1.Health/", "/grpc.reflection."}

// authenticate resolves the bearer token of a call to its tenant. Tokens are
// looked up by hash; nothing here takes a tenant from the caller.
func (s *Server) authenticate(ctx context.Context, method string) (context.Context, error) {
	for _, p := range public {
		if strings.HasPrefix(method, p) {
			return ctx, nil
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			token = strings.TrimSpace(t)
		}
	}
	if token == "" {
		return nil, codeError(codes.Unauthenticated, "unauthenticated", "Missing bearer token: send Authorization: Bearer <token>.")
	}
	hash := control.HashToken(token)
	var tenant, name string
	s.view.Read(func(st *control.State) {
		if tok, ok := st.Tokens[hash]; ok {
			if _, ok := st.Tenants[tok.Tenant]; ok {
				tenant, name = tok.Tenant, tok.Name
			}
		}
	})
	if tenant == "" {
		return nil, codeError(codes.Unauthenticated, "unauthenticated", "Unknown or revoked bearer token.")
	}
	return context.WithValue(context.WithValue(ctx, tenantKey{}, tenant), tokenNameKey{}, name), nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, authedStream{ServerStream: ss, ctx: ctx})
}
