package api

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A panic in a call is an internal error to its client and a log line
// with the stack; the process lives on.
func TestPanicInACallIsAnInternalError(t *testing.T) {
	var logs strings.Builder
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	_, err := s.recoverUnary(t.Context(), nil, &grpc.UnaryServerInfo{FullMethod: "/ogma.v1.OgmaService/GetUsage"},
		func(context.Context, any) (any, error) { panic("boom") })
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "boom") {
		t.Errorf("a panicking call = %v, want Internal without the panic's text", err)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "GetUsage") {
		t.Errorf("the log does not hold the panic: %s", logs.String())
	}
}
