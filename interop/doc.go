// Package interop holds what both ends of the supervisor ↔ managed-node protocol share: the
// event a node sends (ManagedEvent) and its subscription envelope, the JSON-RPC error codes
// and how to recognise them across the wire, the chain-ID wire form, the dependency set, the
// executing-message codec of the CrossL2Inbox, and the JWT secret and token handling that
// authenticates the supervisor when it dials a node. Keeping these in one small package lets
// interop/managed (the node side) and interop/supervisor (the supervisor side) agree on the
// wire without depending on each other.
package interop
