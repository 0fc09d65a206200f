package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// An answer past the gateway's limit is the client's to narrow: 422
// answer_too_large with what to do, never a 500.
func TestAnAnswerTooLargeIsTheClients(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/v1/people", nil)
	s.writeError(t.Context(), nil, nil, w, r, status.Error(codes.ResourceExhausted, "grpc: received message larger than max (70000000 vs. 67108864)"))
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), `"code":"answer_too_large"`) ||
		strings.Contains(w.Body.String(), "67108864") {
		t.Errorf("an answer too large = %d %s, want 422 answer_too_large in our words", w.Code, w.Body)
	}
}
