// Package rpcserve serves a go-ethereum JSON-RPC server over HTTP and websocket on one
// port, with the limits every opkit JSON-RPC endpoint shares: bounded request bodies and
// websocket messages; header, read, write and idle timeouts that leave upgraded websockets
// alone; a per-request timeout for plain HTTP; refusals that close the connection; and
// JSON errors for anything that is not JSON-RPC.
package rpcserve
