// Package interop checks opkit's interop protocol against the OP Stack's own code: the
// op-supervisor syncnode client against opkit's managed-node server, and opkit's supervisor
// against op-node's indexing-mode server.
package interop
