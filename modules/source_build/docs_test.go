package main

import (
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible/docscheck"
)

func TestDocsMatchOptions(t *testing.T) {
	docscheck.Compare[Options](t, "../../plugins/modules/source_build.yml")
}

func TestDocsMatchResult(t *testing.T) {
	docscheck.CompareReturns[moduleResult](t, "../../plugins/modules/source_build.yml")
}
