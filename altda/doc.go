// Package altda holds the AltDA commitment codec and an HTTP client for AltDA servers.
//
// A commitment names a preimage kept off L1: a type byte (0x00 keccak256, 0x01 generic)
// followed by the type's payload. The client speaks the routes of the OP Stack's op-alt-da
// DAClient (keccak /put/<commitment>, generic /put, /get/<commitment>) and understands the
// extended answers of specs issue #434, so a caller can tell "not found" (possibly
// challenged input) from "unavailable, retry after N" (fail over to L1) from "partial
// success" (resend the same body) and from its own configuration mistakes (too large).
package altda
