// A stand-in for Traefik in source_build's documented examples: like the
// real one, "traefik version" prints what the build stamped in.
package main

import (
	"os"
	"runtime"

	"github.com/traefik/traefik/v3/pkg/version"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "version" {
		os.Stderr.WriteString("usage: traefik version\n")
		os.Exit(2)
	}
	os.Stdout.WriteString("Version:      " + version.Version + "\n" +
		"Codename:     " + version.Codename + "\n" +
		"Go version:   " + runtime.Version() + "\n" +
		"Built:        " + version.BuildDate + "\n" +
		"OS/Arch:      " + runtime.GOOS + "/" + runtime.GOARCH + "\n")
}
