// Command binary_stage is the chezlepro.sovereign.binary_stage module: it
// stages a built binary into a release directory and points a colour's slot
// at it, atomically and verified. See plugins/modules/binary_stage.yml.
package main

import "github.com/chezlepro/sovereign/internal/ansible"

func main() { ansible.Main(module()) }
