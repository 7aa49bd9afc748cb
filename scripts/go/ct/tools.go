//go:build tools

// Package tools pins chart-testing in this module so `go build` can build its
// `ct` command: the module proxy refuses `go install` of that module path.
package tools

import _ "github.com/helm/chart-testing/v3/ct"
