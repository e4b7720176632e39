module chezlepro.local/webapp

go 1.21

require golang.org/x/sys v0.27.0
