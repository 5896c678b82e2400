package devnet

import (
	"net"
	"net/url"
	"strconv"
)

// portOf is the port of an http://host:port URL, or 0.
func portOf(endpoint string) int {
	u, err := url.Parse(endpoint)
	if err != nil {
		return 0
	}
	_, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
