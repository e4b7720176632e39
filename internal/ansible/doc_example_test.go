package ansible_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/chezlepro/sovereign/internal/ansible"
)

// Options of a small module: its sidecar documents name (required), state
// (choices present and absent, default present) and token (no_log); the
// struct only reads them.
type Options struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Token string `json:"token"`
}

func module() ansible.Module[Options] {
	return ansible.Module[Options]{
		Name:              "greeting",
		SupportsCheckMode: true,
		Run: func(ctx *ansible.Context, o *Options) (*ansible.Result, error) {
			if o.State == "absent" {
				return nil, fmt.Errorf("cannot remove %s: %w", o.Name, os.ErrPermission)
			}
			return &ansible.Result{
				Changed: !ctx.CheckMode,
				Msg:     "hello " + o.Name + " (token " + o.Token + ")",
				Values:  map[string]any{"greeted": o.Name},
			}, nil
		},
	}
}

// A module's main.go is `func main() { ansible.Main(module()) }`; tests call
// Execute with the path of an args file, as ansible-core does, holding what
// the action plugin sends: the validated arguments and the no_log values.
func ExampleExecute() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	args := filepath.Join(dir, "args")
	_ = os.WriteFile(args, []byte(`{"name": "world", "state": "present", "token": "s3cret",
		"_chezlepro_no_log_values": ["s3cret"], "_ansible_check_mode": false}`), 0o600)
	status := ansible.Execute(module(), []string{"greeting", args}, os.Stdout)
	fmt.Println("exit status", status)

	_ = os.WriteFile(args, []byte(`{"name": "world", "state": "absent", "token": null}`), 0o600)
	status = ansible.Execute(module(), []string{"greeting", args}, os.Stdout)
	fmt.Println("exit status", status)
	// Output:
	// {"changed":true,"greeted":"world","invocation":{"module_args":{"name":"world","state":"present","token":"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}},"msg":"hello world (token ********)"}
	// exit status 0
	// {"changed":false,"failed":true,"invocation":{"module_args":{"name":"world","state":"absent","token":null}},"msg":"cannot remove world: permission denied"}
	// exit status 1
}
