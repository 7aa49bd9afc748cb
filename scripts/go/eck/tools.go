//go:build tools

// Package tools pins the ECK operator's command in this module so `go build`
// can build it: `go install` refuses its module, which has replace directives.
package tools

import _ "github.com/elastic/cloud-on-k8s/v3/cmd"
