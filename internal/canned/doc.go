// Package canned holds canned responses: texts a rep inserts in the reply
// box by typing "/" and a shortcut. Team responses come from the
// configuration (read-only) and from supervisors through the API; each
// rep keeps personal ones. Texts may carry variables, {{customer.name}}
// and the like, expanded for one customer and rep (Expand), with a
// fallback after '|' for a value that is empty: {{customer.first_name|there}}.
//
// The Store keeps the ones made through the API: a bbolt file beside the
// store on one node (canned.db), hashes in Valkey in a cluster, so every
// node shows the same; the memory one is for tests. None of them is the
// sessions store: canned responses are the reps' tools, not a customer's
// data, and sessions has no place for a rep's things.
//
// What it must not do: hold anything personal about customers (the
// variables are filled in at read time, never stored), or check roles
// (the API decides who may write team or personal responses).
//
// Concurrency: every Store is safe for concurrent use.
package canned
