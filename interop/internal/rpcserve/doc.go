// Package rpcserve serves a go-ethereum JSON-RPC server over HTTP and websocket on one
// port, with the limits every opkit interop endpoint shares: bounded request bodies and
// websocket messages, a header timeout and a per-request timeout for plain HTTP, and JSON
// errors for anything that is not JSON-RPC.
package rpcserve
