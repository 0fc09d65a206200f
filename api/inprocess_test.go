package api

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// echoHealth answers Check by the service it is asked about.
type echoHealth struct {
	healthpb.UnimplementedHealthServer
}

func (echoHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	grpc.SetTrailer(ctx, metadata.Pairs("x-served", req.Service))
	switch req.Service {
	case "plain":
		return nil, errors.New("a plain error")
	case "canceled":
		return nil, context.Canceled
	case "status":
		return nil, status.Error(codes.NotFound, "no such service")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// A call through inProcess is what the same call over the socket is: the
// interceptors see the caller's metadata and set headers the caller gets,
// a handler's plain error becomes the status the server would send, and
// an answer over the limit is refused as the client refuses it.
func TestInProcessCallsAsTheSocketDoes(t *testing.T) {
	// The interceptor echoes the caller's request id in a header.
	echo := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		grpc.SetHeader(ctx, metadata.Pairs("x-request-id", "echo-"+md.Get("x-request-id")[0], "x-method", info.FullMethod))
		return handler(ctx, req)
	}
	unary := chainUnary(echo, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(ctx, req)
	})
	gs := grpc.NewServer(grpc.UnaryInterceptor(unary))
	healthpb.RegisterHealthServer(gs, echoHealth{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(l)
	t.Cleanup(gs.Stop)

	for _, limit := range []int{1 << 20, 1} {
		conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(limit)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		socket := healthpb.NewHealthClient(conn)
		local := healthpb.NewHealthClient(newInProcess(conn, &healthpb.Health_ServiceDesc, echoHealth{}, unary, limit))
		for _, service := range []string{"", "plain", "canceled", "status"} {
			type answer struct {
				resp            *healthpb.HealthCheckResponse
				code            codes.Code
				msg             string
				header, trailer metadata.MD
			}
			call := func(c healthpb.HealthClient) answer {
				var a answer
				ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "r1")
				var err error
				a.resp, err = c.Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.Header(&a.header), grpc.Trailer(&a.trailer))
				a.code, a.msg = status.Code(err), status.Convert(err).Message()
				return a
			}
			want, got := call(socket), call(local)
			if !proto.Equal(got.resp, want.resp) || got.code != want.code || got.msg != want.msg {
				t.Errorf("limit %d, %q: in process = %v, %v %q; over the socket %v, %v %q", limit, service,
					got.resp, got.code, got.msg, want.resp, want.code, want.msg)
			}
			for _, k := range []string{"x-request-id", "x-method"} {
				if g, w := got.header.Get(k), want.header.Get(k); len(w) == 0 || !slices.Equal(g, w) {
					t.Errorf("limit %d, %q: header %s in process = %q, over the socket %q", limit, service, k, g, w)
				}
			}
			if g, w := got.trailer.Get("x-served"), want.trailer.Get("x-served"); !slices.Equal(g, w) {
				t.Errorf("limit %d, %q: trailer in process = %q, over the socket %q", limit, service, g, w)
			}
		}
	}
}
