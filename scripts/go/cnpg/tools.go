//go:build tools

// Package tools pins CloudNativePG's manager command in this module so `go build`
// can build it with every dependency pinned by this module's go.sum.
package tools

import _ "github.com/cloudnative-pg/cloudnative-pg/cmd/manager"
