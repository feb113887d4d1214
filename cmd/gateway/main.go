// Command gateway runs Omnigate: `go run ./cmd/gateway` serves a single
// node from configs/gateway.yaml; -config picks another file, such as
// configs/gateway-cluster.yaml. SIGINT or SIGTERM shuts it down gracefully.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/gateway"
)

func main() { os.Exit(run()) }

func run() int {
	path := flag.String("config", "configs/gateway.yaml", "configuration file")
	flag.Parse()

	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	var log *slog.Logger
	if cfg.Log.Format == "json" {
		log = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	} else {
		log = slog.New(slog.NewTextHandler(os.Stderr, opts))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := gateway.New(ctx, cfg, log)
	if err != nil {
		log.Error("gateway failed to start", slog.Any("error", err))
		return 1
	}
	fmt.Println("Omnigate is serving:")
	for _, u := range g.URLs() {
		fmt.Println("  " + u)
	}
	if err := g.Run(ctx); err != nil {
		log.Error("gateway stopped with an error", slog.Any("error", err))
		return 1
	}
	return 0
}
