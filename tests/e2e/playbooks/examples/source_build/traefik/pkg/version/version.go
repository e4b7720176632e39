// Package version holds what a build stamps in with -X, under the names
// Traefik's own package uses.
package version

var (
	Version   = "dev"
	Codename  = "cheddar"
	BuildDate = "I don't remember exactly"
)
