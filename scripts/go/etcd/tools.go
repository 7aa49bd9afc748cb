//go:build tools

// Package tools pins the etcd server command in this module so `go build`
// can build it; the build tag keeps this file out of every real build.
package tools

import _ "go.etcd.io/etcd/server/v3"
