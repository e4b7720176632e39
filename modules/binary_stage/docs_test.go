package main

import (
	"testing"

	"github.com/chezlepro/sovereign/internal/ansible/docscheck"
)

func TestDocsMatchOptions(t *testing.T) {
	docscheck.Compare[Options](t, "../../plugins/modules/binary_stage.yml")
}

func TestDocsMatchResult(t *testing.T) {
	docscheck.CompareReturns[stageResult](t, "../../plugins/modules/binary_stage.yml")
}
