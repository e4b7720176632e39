// The agent of source_build's documented make example: it prints the
// version its Makefile stamped in.
package main

import "os"

var version = "dev"

func main() {
	os.Stdout.WriteString("agent " + version + "\n")
}
