// Command hello is the sample program source_build's tests build: one
// vendored dependency, and version variables set with -ldflags -X.
package main

import (
	"fmt"

	"example.com/greet"
)

var (
	version = "dev"
	commit  = "none"
)

func main() {
	fmt.Println(greet.Hello("sovereign"), version, commit)
}
