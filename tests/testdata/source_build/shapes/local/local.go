package local

func Where() string { return "local" }
