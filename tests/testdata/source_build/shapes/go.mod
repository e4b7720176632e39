module example.com/shapes

go 1.22

require (
	example.com/greet v1.0.0
	example.com/local v0.0.0-00010101000000-000000000000
	example.com/multi v1.0.0
	example.com/multi/v2 v2.1.0
	example.com/old v1.0.0
)

// A fork of another module, and a directory of this tree, as Traefik's
// go.mod does.
replace example.com/old => example.com/fork v1.2.0

replace example.com/local => ./local
