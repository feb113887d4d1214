// Package wsconn holds what every WebSocket Omnigate serves shares: the
// visitor's (channels/webchat) and the rep's (internal/inbox).
//
// Close codes: the ranges that tell a client what to do next and the
// codes that mean the same on every socket (closecodes.go). Each socket's
// package lists its codes, these and its own, in one catalogue.
//
// Serve moves a socket's life off net/http's connection goroutine. melody
// (and gorilla/websocket under it) runs a socket's read loop inside the
// HTTP handler that upgraded it. For as long as that handler runs,
// net/http keeps its per-connection state alive: the goroutine with the
// whole handler stack, the request's response (its 2 KiB chunking buffer),
// the connection's 4 KiB write buffer and context. With ten thousand idle
// visitor sockets that is most of the memory a socket costs beyond its own
// buffers. Serve takes the connection from net/http first, hands melody a
// ResponseWriter whose Hijack returns that connection, runs melody on a
// fresh goroutine and lets the handler return, so net/http lets go of
// everything but the socket. melody itself is unchanged: the stack chosen
// for the project stays, only the goroutine it runs on differs.
//
// What it must not do: know what a socket carries (frames, customers,
// reps); that is its user's.
package wsconn
