package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Request ids: every call has one — the client's X-Request-Id when it is
// a plain token, else a new one. The response carries it (the
// X-Request-Id header, and request_id in every REST error body), and so
// does every log line of the call, so that an operator finds a failed
// call's log from what its client saw.

const requestIDHeader = "X-Request-Id"

// validRequestID is what a client's own id may be: short, plain, safe to
// log.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

type requestIDKey struct{}

// requestIDOf returns the request id of ctx, "" outside a call.
func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// orNewRequestID returns id when it is a valid one, else a new one.
func orNewRequestID(id string) string {
	if validRequestID.MatchString(id) {
		return id
	}
	return newRequestID()
}

// withRequestID gives each HTTP request its id: in its headers (which the
// gateway passes on to the gRPC call) and the response's.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := orNewRequestID(r.Header.Get(requestIDHeader))
		r.Header.Set(requestIDHeader, id)
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// gatewayHeader passes the request id on to the gRPC call, beside what
// the gateway passes by default.
func gatewayHeader(key string) (string, bool) {
	if http.CanonicalHeaderKey(key) == requestIDHeader {
		return "x-request-id", true
	}
	return runtimeDefaultHeaderMatcher(key)
}

// unaryRequestID gives each gRPC call its id (from the gateway, a client's
// metadata, or new), returns it in the response header, and logs every
// call that fails inside Ogma with it.
func (s *Server) unaryRequestID(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var id string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-request-id"); len(v) > 0 {
			id = v[0]
		}
	}
	id = orNewRequestID(id)
	ctx = context.WithValue(ctx, requestIDKey{}, id)
	grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
	resp, err := handler(ctx, req)
	if err != nil && serverFault(err) {
		s.log.ErrorContext(ctx, "call failed", "method", info.FullMethod, "code", stableCodeOf(err))
	}
	return resp, err
}

func (s *Server) streamRequestID(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	id := ""
	if md, ok := metadata.FromIncomingContext(ss.Context()); ok {
		if v := md.Get("x-request-id"); len(v) > 0 {
			id = v[0]
		}
	}
	ctx := context.WithValue(ss.Context(), requestIDKey{}, orNewRequestID(id))
	return handler(srv, &streamWithContext{ServerStream: ss, ctx: ctx})
}

type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *streamWithContext) Context() context.Context { return s.ctx }

// requestIDHandler adds the call's request id to every log record made
// with a call's context.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestIDOf(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
