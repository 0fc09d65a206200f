package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
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
	tenant, name, err := s.tokenTenant(token)
	if err != nil {
		return nil, err
	}
	return context.WithValue(context.WithValue(ctx, tenantKey{}, tenant), tokenNameKey{}, name), nil
}

// tokenTenant returns the tenant and name of a bearer token.
func (s *Server) tokenTenant(token string) (tenant, name string, err error) {
	if token == "" {
		return "", "", codeError(codes.Unauthenticated, "unauthenticated", "Missing bearer token: send Authorization: Bearer <token>.")
	}
	hash := control.HashToken(token)
	s.view.Read(func(st *control.State) {
		if tok, ok := st.Tokens[hash]; ok {
			if _, ok := st.Tenants[tok.Tenant]; ok {
				tenant, name = tok.Tenant, tok.Name
			}
		}
	})
	if tenant == "" {
		return "", "", codeError(codes.Unauthenticated, "unauthenticated", "Unknown or revoked bearer token.")
	}
	return tenant, name, nil
}

// maxBody bounds a REST request body: the largest the API takes is a
// link or an admin key, a few KiB.
const maxBody = 1 << 20

// authFirst checks a REST call's bearer token before anything reads its
// body, and bounds the body: without a token a call costs nothing, and
// with one it cannot fill the memory.
func (s *Server) authFirst(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, _, err := s.tokenTenant(strings.TrimSpace(token)); err != nil {
			s.writeError(r.Context(), nil, nil, w, r, err)
			return
		}
		if r.ContentLength > maxBody {
			s.writeError(r.Context(), nil, nil, w, r, codeError(codes.ResourceExhausted, "body_too_large",
				fmt.Sprintf("The request body is %d bytes; the API takes at most %d.", r.ContentLength, maxBody)))
			return
		}
		// Read whole here, so that a body past the bound — sent without a
		// length — is told apart from a malformed one.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			s.writeError(r.Context(), nil, nil, w, r, codeError(codes.ResourceExhausted, "body_too_large",
				fmt.Sprintf("The request body is more than the %d bytes the API takes.", maxBody)))
			return
		case err != nil:
			s.writeError(r.Context(), nil, nil, w, r, codeError(codes.InvalidArgument, "malformed_request",
				"The request body could not be read: it was cut short or sent too slowly."))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
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

// recoverUnary turns a panic in a call into an internal error for the
// client and a log line with the stack, instead of a dead process.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer s.recovered(ctx, info.FullMethod, &err)
	return handler(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer s.recovered(ss.Context(), info.FullMethod, &err)
	return handler(srv, ss)
}

func (s *Server) recovered(ctx context.Context, method string, err *error) {
	if p := recover(); p != nil {
		s.log.ErrorContext(ctx, "panic in a call", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		*err = codeError(codes.Internal, "internal", "The request failed inside Ogma; see the server log.")
	}
}
