module example.com/multi/v2

go 1.22
