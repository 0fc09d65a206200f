// Package loopback tells addresses that never leave the machine, where
// plain http is acceptable: a simulator, a local API.
package loopback

import "net"

// Host reports whether host (a name or an IP, without port) is loopback.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
