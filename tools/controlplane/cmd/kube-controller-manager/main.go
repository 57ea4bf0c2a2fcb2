// Command kube-controller-manager is the upstream controller manager, linked
// from the same k8s.io/kubernetes module as kube-apiserver. The tests run its
// deployment and replicaset controllers so Deployments get real status
// (Progressing, ProgressDeadlineExceeded) without a kubelet.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
