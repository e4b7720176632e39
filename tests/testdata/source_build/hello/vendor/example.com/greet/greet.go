// Package greet is the sample's vendored dependency.
package greet

// Hello greets name.
func Hello(name string) string { return "hello, " + name }
