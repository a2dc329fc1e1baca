// Command pcnoded is the pcnode node daemon: it serves the v1 gRPC API on a
// unix socket (and, with api.tcp_address, over TCP with mutual TLS) and runs
// processing-container tasks through containerd. SIGTERM and SIGINT stop it
// (running tasks keep running); SIGHUP reloads the TLS files.
//
//	pcnoded [--config FILE] [--socket PATH] [--state-dir DIR] ...  serve
//	pcnoded config default                                        print the documented default config
//	pcnoded config check [--config FILE]                          validate a config file
//	pcnoded log-driver ...                                         logging binary of containers an older pcnoded started (internal; now pcnode-logd)
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "pcnoded:", err)
		os.Exit(1)
	}
}
