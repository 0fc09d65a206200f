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

func main() { os.Exit(execute(runners{})) }

// execute runs the command line of os.Args with r and returns the exit
// code; SIGINT and SIGTERM stop it cleanly.
func execute(r runners) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.LookupEnv, r).ExecuteContext(ctx)
	stop()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // stopped by a signal: a clean exit
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ogma:", err)
		if ee, ok := errors.AsType[*exitError](err); ok {
			return ee.code
		}
		return 1
	}
	return 0
}
