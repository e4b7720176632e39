package main

import (
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible/docscheck"
)

func TestDocsMatchOptions(t *testing.T) {
	docscheck.Compare[Options](t, "../../plugins/modules/bluegreen_unit.yml")
}

func TestDocsMatchReturns(t *testing.T) {
	docscheck.CompareReturns[unitResult](t, "../../plugins/modules/bluegreen_unit.yml")
}
