// Package api serves Ogma's query side: the gRPC service of proto/ogma/v1
// (with server reflection, so grpcurl works), its REST face through
// grpc-gateway, /healthz and /metrics.
//
// Every call but the health checks needs a bearer token; the token decides
// the tenant, and no request can name another. REST calls go through the
// gRPC server over loopback, so one set of interceptors guards both faces.
package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ogma-dev/ogma/api/console"
	"github.com/ogma-dev/ogma/internal/loopback"
	"github.com/ogma-dev/ogma/pipeline/control"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

// Config configures the servers.
type Config struct {
	// HTTP is the REST (gateway), /healthz and /metrics address.
	// Default "127.0.0.1:8080"; port 0 picks a free port.
	HTTP string
	// GRPC is the gRPC address. Default "127.0.0.1:9090".
	GRPC string
	// ShutdownTimeout bounds the graceful stop. Default 10 s.
	ShutdownTimeout time.Duration
	// TLSCert and TLSKey are PEM files: with both, both listeners speak
	// TLS only.
	TLSCert, TLSKey string
	// Insecure allows plaintext listeners beyond loopback, for a process
	// behind a proxy that terminates TLS. Without it, New refuses them.
	Insecure bool
}

// Deps are the server's collaborators.
type Deps struct {
	// View is the installation's control state: tokens, tenants,
	// integrations, observations. Required.
	View *control.View
	// Health answers /healthz; nil makes a new one with no roles.
	Health *Health
	// Usage answers /v1/usage; nil makes it unavailable.
	Usage UsageReader
	// Identity answers /v1/people and /v1/links; nil makes them unavailable.
	Identity IdentityReader
	// Audit answers /v1/audit-logs; nil makes it unavailable.
	Audit AuditReader
	// Links records manual links; nil makes PUT and DELETE unavailable.
	Links *Links
	// Integrations connects vendor keys; nil makes it unavailable.
	Integrations *Integrations
	// Integrity answers /v1/integrity; nil makes it unavailable.
	Integrity *Integrity
	// Metrics serves /metrics; nil serves none.
	Metrics http.Handler
	// Logger; nil discards.
	Logger *slog.Logger
}

// Server is the API of one process.
type Server struct {
	ogmav1.UnimplementedOgmaServiceServer

	cfg      Config
	cert     *tls.Certificate // nil: plaintext
	view     *control.View
	health   *Health
	metrics  http.Handler
	usage    UsageReader
	identity IdentityReader
	audit    AuditReader
	links    *Links
	integ    *Integrations
	evidence *Integrity
	log      *slog.Logger

	listening chan struct{}
	once      sync.Once
	httpAddr  string
	grpcAddr  string
}

// New returns a server; it listens only in Run.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.View == nil {
		return nil, errors.New("api: Deps.View is required")
	}
	if cfg.HTTP == "" {
		cfg.HTTP = "127.0.0.1:8080"
	}
	if cfg.GRPC == "" {
		cfg.GRPC = "127.0.0.1:9090"
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	var cert *tls.Certificate
	switch {
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return nil, errors.New("api: TLS needs both a certificate and its key")
	case cfg.TLSCert != "":
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("api: TLS: %w", err)
		}
		cert = &c
	case !cfg.Insecure:
		// Tokens and admin keys cross these listeners.
		for _, addr := range []string{cfg.HTTP, cfg.GRPC} {
			if host, _, err := net.SplitHostPort(addr); err != nil || !loopback.Host(host) {
				return nil, fmt.Errorf("api: %s is beyond loopback and there is no TLS: give a certificate "+
					"(--tls-cert, --tls-key), or --insecure behind a proxy that terminates TLS", addr)
			}
		}
	}
	if deps.Health == nil {
		deps.Health = &Health{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, cert: cert, view: deps.View, health: deps.Health, metrics: deps.Metrics, usage: deps.Usage, integ: deps.Integrations, evidence: deps.Integrity,
		identity: deps.Identity, audit: deps.Audit, links: deps.Links,
		log: slog.New(requestIDHandler{deps.Logger.Handler()}).With("component", "api"), listening: make(chan struct{})}, nil
}

// Listening is closed once both listeners are open; then [Server.HTTPAddr]
// and [Server.GRPCAddr] return the bound addresses.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// HTTPAddr returns the bound REST address.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// GRPCAddr returns the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcAddr }

// Run serves until ctx ends, then stops gracefully within the shutdown
// timeout and returns ctx.Err().
func (s *Server) Run(ctx context.Context) error {
	lg, err := net.Listen("tcp", s.cfg.GRPC)
	if err != nil {
		return fmt.Errorf("api: listen grpc: %w", err)
	}
	lh, err := net.Listen("tcp", s.cfg.HTTP)
	if err != nil {
		lg.Close()
		return fmt.Errorf("api: listen http: %w", err)
	}
	s.grpcAddr, s.httpAddr = lg.Addr().String(), lh.Addr().String()

	opts := []grpc.ServerOption{}
	// The gateway dials the gRPC listener of this very process.
	gatewayCreds := insecure.NewCredentials()
	if s.cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*s.cert}, MinVersion: tls.VersionTLS12})))
		pool := x509.NewCertPool()
		pool.AddCert(s.cert.Leaf)
		for _, c := range s.cert.Certificate[1:] {
			if ca, err := x509.ParseCertificate(c); err == nil {
				pool.AddCert(ca)
			}
		}
		gatewayCreds = credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: serverName(s.cert.Leaf), MinVersion: tls.VersionTLS12})
	}
	unary := chainUnary(s.unaryRequestID, s.recoverUnary, s.unaryAuth)
	gs := grpc.NewServer(append(opts,
		grpc.UnaryInterceptor(unary),
		grpc.ChainStreamInterceptor(s.streamRequestID, s.recoverStream, s.streamAuth),
		// Limits a client cannot talk its way past: small messages (the API
		// takes a link or a key), bounded streams, idle connections closed,
		// keepalive pings no more often than every 30 s.
		grpc.MaxRecvMsgSize(maxBody), grpc.MaxSendMsgSize(maxAnswer), grpc.MaxConcurrentStreams(100),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 30 * time.Second}))...)
	ogmav1.RegisterOgmaServiceServer(gs, s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	gctx, cancelGateway := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelGateway()
	gw := runtime.NewServeMux(runtime.WithErrorHandler(s.writeError), runtime.WithRoutingErrorHandler(s.routingError),
		runtime.WithIncomingHeaderMatcher(gatewayHeader), runtime.WithMarshalerOption(runtime.MIMEWildcard, &bodyMarshaler{runtime.HTTPBodyMarshaler{Marshaler: answerMarshaler{&runtime.JSONPb{
			// Field names as in the API documentation (audit_logs), and false
			// flags shown rather than left out; a block not set is null
			// (x-nullable in the OpenAPI document). answerMarshaler writes
			// what pbjson covers with these options.
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}}}))
	gatewayFailed := func(err error) error {
		lg.Close()
		lh.Close()
		return fmt.Errorf("api: gateway: %w", err)
	}
	// Streams go over the socket; unary calls stay in process (inProcess).
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(gatewayCreds),
		// Answers up to maxAnswer pass the gateway; usage and the audit log
		// page well below it, and a larger answer is the client's to narrow
		// (answer_too_large), never a 500.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxAnswer)))
	if err != nil {
		return gatewayFailed(err)
	}
	defer conn.Close()
	client := ogmav1.NewOgmaServiceClient(newInProcess(conn, &ogmav1.OgmaService_ServiceDesc, s, unary, maxAnswer))
	if err := ogmav1.RegisterOgmaServiceHandlerClient(gctx, gw, client); err != nil {
		return gatewayFailed(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.health)
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	web := console.Handler()
	mux.Handle("GET /{$}", web)
	mux.Handle("GET /index.html", web)
	mux.Handle("GET /assets/", web)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	mux.Handle("/", withRequestID(s.authFirst(gw)))
	// A client that sends its request slowly, or stops halfway, is cut off
	// rather than holding a connection: nothing the API takes needs more.
	hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}

	g, gctxErr := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreClosed(gs.Serve(lg)) })
	if s.cert != nil {
		hsrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*s.cert}, MinVersion: tls.VersionTLS12}
		g.Go(func() error { return ignoreClosed(hsrv.ServeTLS(lh, "", "")) })
	} else {
		g.Go(func() error { return ignoreClosed(hsrv.Serve(lh)) })
	}
	s.once.Do(func() { close(s.listening) })
	s.log.InfoContext(ctx, "serving", "http", s.httpAddr, "grpc", s.grpcAddr)
	g.Go(func() error {
		<-gctxErr.Done()
		// The parent ctx is done: stop within the shutdown timeout, then force.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := hsrv.Shutdown(sctx); err != nil {
			hsrv.Close()
		}
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-sctx.Done():
			gs.Stop()
			<-stopped
		}
		cancelGateway()
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// serverName is a name the certificate is for, for the gateway to check
// its own listener by.
func serverName(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	if len(c.IPAddresses) > 0 {
		return c.IPAddresses[0].String()
	}
	return c.Subject.CommonName
}
