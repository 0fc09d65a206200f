// Command ogma is Ogma: one binary with a subcommand per role (connect,
// api, sim, tenant, token) and `ogma dev`, which runs every role in one
// process on embedded defaults. This package only reads settings and wires
// roles; the work lives in connectors/, pipeline/, sinks/ and api/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.LookupEnv, runners{}).ExecuteContext(ctx)
	stop()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // stopped by a signal: a clean exit
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ogma:", err)
		os.Exit(1)
	}
}
