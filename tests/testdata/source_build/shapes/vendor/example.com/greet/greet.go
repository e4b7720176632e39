package greet

func Hello(n string) string { return "hello, " + n }
