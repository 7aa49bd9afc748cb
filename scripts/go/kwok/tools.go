//go:build tools

// Package tools pins the kwok command in this module so `go build` can build
// it; the build tag keeps this file out of every real build.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
