// Package gateway wires a loaded config.Config into a running gateway: it
// opens the store, builds the channel registry and the HTTP API, listens,
// and shuts everything down in order. cmd/gateway's main only parses flags,
// loads the config and calls New and Run; tests start the same gateway on
// 127.0.0.1:0.
//
// Shutdown order, once Run's context ends: stop accepting connections,
// drain in-flight HTTP requests for up to Config.ShutdownTimeout (then cut
// the rest), then close the store, which flushes and syncs it. Later issues
// add closing WebSockets with a "shutdown" close code and handing back
// calls, between draining HTTP and closing the store.
//
// What it must not do: hold business logic. Anything a handler, router or
// adapter does belongs in that package; this one only connects them.
//
// Concurrency: New, then Run once. URLs and Addr are safe at any time after
// New.
package gateway
