module github.com/traefik/traefik/v3

go 1.22
