// Command source_build is the chezlepro.sovereign.source_build module: it
// checks out a version of a program from a git mirror and builds it offline
// and reproducibly into an artifact store.
package main

import "github.com/chezlepro/sovereign/internal/ansible"

func main() { ansible.Main(module()) }
