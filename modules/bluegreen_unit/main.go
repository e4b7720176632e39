// Command bluegreen_unit is the chezlepro.sovereign.bluegreen_unit module:
// a service run as two systemd colours, blue and green, flipped from one to
// the other behind a health gate. See plugins/modules/bluegreen_unit.yml.
package main

import "github.com/chezlepro/sovereign/internal/ansible"

func main() { ansible.Main(module()) }
