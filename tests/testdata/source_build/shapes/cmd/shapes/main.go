// Command shapes imports a module of each shape vendor/modules.txt records:
// a plain one, one replaced by a fork, one replaced by a directory, and two
// majors of one path.
package main

import (
	"fmt"

	"example.com/greet"
	"example.com/local"
	"example.com/multi"
	multi2 "example.com/multi/v2"
	"example.com/old"
)

var version = "dev"

func main() {
	fmt.Println(greet.Hello("shapes"), old.Name(), local.Where(), multi.Major(), multi2.Major(), version)
}
