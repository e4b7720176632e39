package ansible

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// The golden tests run the example module as a real process, the way
// ansible-core does: `example-module ARGS_FILE`, one JSON object on stdout.
// UPDATE_GOLDEN=1 go test -run TestScripts rewrites the expected outputs;
// review the diff before committing.

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"example-module": func() { Main(exampleModule()) },
		"example-module-nocheck": func() {
			m := exampleModule()
			m.SupportsCheckMode = false
			Main(m)
		},
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       os.Getenv("UPDATE_GOLDEN") != "",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}
