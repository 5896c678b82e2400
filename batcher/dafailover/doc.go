// Package dafailover decides, channel by channel, whether a batcher posts to an AltDA
// server or to Ethereum, and what to do after each answer of the server's PUT route.
//
// It is a pure state machine: the caller performs the PUT, classifies the answer into an
// Outcome and asks the Machine for the next Action, passing the time explicitly. A 503
// moves the channel to Ethereum DA and keeps every later channel off AltDA until the
// server's retry_after has passed; a 201 asks for the same body to be sent again, with
// backoff, until the server answers 200 or the partial-retry bound is reached, when the
// commitment the server gave is posted anyway; a 400 is a configuration error that sends
// the channel to Ethereum DA at once; timeouts and other server errors are retried with
// backoff and then fail the channel over too.
package dafailover
