// Package compat holds tests that run opkit against the OP Stack's own components (the
// optimism monorepo's Go code), so that wire compatibility is checked against the real
// peers rather than against opkit's reading of them. It is a separate module so that the
// monorepo is never a dependency of opkit itself.
package compat
