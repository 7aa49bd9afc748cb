//go:build tools

// Package tools pins the control-plane commands in this module so `go build`
// can build them; the build tag keeps this file out of every real build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
