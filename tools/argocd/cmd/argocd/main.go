// Command argocd is upstream Argo CD's multi-call binary, trimmed to the
// components Baton's tests run: the entry below is github.com/argoproj/argo-cd/v3's
// cmd/main.go with only the application controller, the repo server and the
// git ask-pass helper (which the repo server runs as GIT_ASKPASS) linked in.
// The component is chosen by the executable's name or ARGOCD_BINARY_NAME.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/util/log"
)

const binaryNameEnv = "ARGOCD_BINARY_NAME"

func init() {
	// Make sure klog uses the configured log level and format.
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	binaryName := filepath.Base(os.Args[0])
	if val := os.Getenv(binaryNameEnv); val != "" {
		binaryName = val
	}

	var command *cobra.Command
	switch binaryName {
	case "argocd-application-controller":
		command = appcontroller.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	case "argocd-git-ask-pass":
		command = gitaskpass.NewCommand()
		command.SilenceErrors = true
		command.SilenceUsage = true
	default:
		fmt.Fprintf(os.Stderr, "%s: unknown component %q; run as argocd-application-controller, "+
			"argocd-repo-server or argocd-git-ask-pass (by name or %s)\n", os.Args[0], binaryName, binaryNameEnv)
		os.Exit(2)
	}

	if err := command.Execute(); err != nil {
		if command.SilenceErrors {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
}
