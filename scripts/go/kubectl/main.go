// Command kubectl is the upstream kubectl, built from the published k8s.io/kubectl
// module at the Kubernetes version la-stack pins, so no prebuilt binary is needed.
package main

import (
	"os"

	// Registers the client-go auth providers (exec, OIDC) that kubeconfigs may name.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
		os.Exit(1)
	}
}
