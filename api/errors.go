package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorDomain names Ogma's error codes in a gRPC ErrorInfo.
const errorDomain = "ogma.dev"

// httpStatus maps each stable error code to its HTTP status.
var httpStatus = map[string]int{
	"malformed_request":  http.StatusBadRequest,
	"unauthenticated":    http.StatusUnauthorized,
	"not_found":          http.StatusNotFound,
	"method_not_allowed": http.StatusMethodNotAllowed,
	"body_too_large":     http.StatusRequestEntityTooLarge,
	"answer_too_large":   http.StatusUnprocessableEntity,
	"unknown_vendor":     http.StatusNotFound,
	"unknown_subject":    http.StatusNotFound,
	"wrong_key_type":     http.StatusUnprocessableEntity,
	"invalid_key":        http.StatusUnprocessableEntity,
	"insufficient_scope": http.StatusUnprocessableEntity,
	"region_unsupported": http.StatusUnprocessableEntity,
	"vendor_unreachable": http.StatusFailedDependency,
	"vendor_error":       http.StatusFailedDependency,
	"unavailable":        http.StatusServiceUnavailable,
	"internal":           http.StatusInternalServerError,
}

// codeError returns a gRPC error carrying a stable code and a sentence.
func codeError(c codes.Code, code, msg string) error {
	st := status.New(c, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: code, Domain: errorDomain}); err == nil {
		st = d
	}
	return st.Err()
}

// maxAnswer bounds an answer: 64 MiB, where the gRPC default is 4.
const maxAnswer = 64 << 20

// stableCode returns the error's stable code: its ErrorInfo reason, or one
// derived from its gRPC code.
func stableCode(st *status.Status) string {
	if c, ok := ourCode(st); ok {
		return c
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return "malformed_request"
	case codes.Unauthenticated:
		return "unauthenticated"
	case codes.NotFound:
		return "not_found"
	case codes.Unavailable:
		return "unavailable"
	case codes.ResourceExhausted:
		// gRPC's own: an answer past maxAnswer.
		return "answer_too_large"
	}
	return "internal"
}

// serverFault reports whether err is Ogma's fault rather than the
// client's: what REST answers with a 5xx.
func serverFault(err error) bool {
	st := status.Convert(err)
	hs, ok := httpStatus[stableCode(st)]
	if !ok {
		hs = runtime.HTTPStatusFromCode(st.Code())
	}
	return hs >= 500
}

// stableCodeOf returns err's stable code.
func stableCodeOf(err error) string { return stableCode(status.Convert(err)) }

// runtimeDefaultHeaderMatcher is the gateway's own choice of headers.
var runtimeDefaultHeaderMatcher = runtime.DefaultHeaderMatcher

// writeError renders every REST error as {"code": "<stable code>",
// "message": "<a sentence>", "request_id": "<the call's id>"} with the
// code's HTTP status; a 5xx is logged with the request id.
func (s *Server) writeError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	code := stableCode(st)
	msg := st.Message()
	if _, ours := ourCode(st); !ours {
		// The gateway's own decode errors may quote the body, which can hold
		// a key: say what went wrong without repeating it.
		switch st.Code() {
		case codes.InvalidArgument:
			msg = "The request body or parameters could not be read; send JSON of the documented shape."
		case codes.ResourceExhausted:
			msg = "The answer is larger than the API sends at once; narrow the window, the grouping or the filters, or page it."
		case codes.Unauthenticated, codes.NotFound:
		default:
			msg = "The request failed inside Ogma; see the server log."
		}
	}
	hs, ok := httpStatus[code]
	if !ok {
		hs = runtime.HTTPStatusFromCode(st.Code())
	}
	id := w.Header().Get(requestIDHeader)
	if hs >= 500 {
		// The gRPC side logged what failed; this line ties the REST call to it.
		s.log.ErrorContext(context.WithValue(ctx, requestIDKey{}, id), "request failed", "method", r.Method, "path", r.URL.Path,
			"code", code, "status", hs)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(hs)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg, "request_id": id})
}

// routingError answers a request no route takes. The gateway's own answer
// to a known path asked with another method is a gRPC Unimplemented, which
// writeError would show as internal: it gets a code of its own.
func (s *Server) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", strings.Join(allowed(r.URL.Path), ", "))
		s.writeError(ctx, mux, m, w, r, codeError(codes.Unimplemented, "method_not_allowed",
			fmt.Sprintf("%s does not take %s; the README's API table lists each call's method.", r.URL.Path, r.Method)))
		return
	}
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, status)
}

// ourCode returns the stable code Ogma attached to the status, if any.
func ourCode(st *status.Status) (string, bool) {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			return info.GetReason(), true
		}
	}
	return "", false
}

// queryFailed is the answer to a query the store failed: the client learns
// that it failed, the log why (store errors name tables and servers).
func queryFailed(what string) error {
	return codeError(codes.Unavailable, "unavailable", "The "+what+" query failed inside Ogma; try again, and see the server log if it persists.")
}
