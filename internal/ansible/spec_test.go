package ansible

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDescribeExample(t *testing.T) {
	specs, err := Describe[exampleOptions]()
	require.NoError(t, err)
	gate := []OptionSpec{
		{Name: "kind", Type: "str", Required: true, Choices: []string{"http", "tcp", "command"}},
		{Name: "url", Type: "str"},
		{Name: "timeout", Type: "int", Default: 30},
		{Name: "token", Type: "str", NoLog: true},
		{Name: "expect_status", Type: "list", Elements: "int"},
		{Name: "headers", Type: "list", Elements: "dict", Suboptions: []OptionSpec{
			{Name: "name", Type: "str", Required: true},
			{Name: "value", Type: "str", NoLog: true},
		}},
	}
	assert.Equal(t, []OptionSpec{
		{Name: "name", Type: "str", Required: true},
		{Name: "dest", Type: "path", Aliases: []string{"path", "target"}},
		{Name: "state", Type: "str", Default: "present", Choices: []string{"present", "absent"}},
		{Name: "keep_releases", Type: "int", Default: 5},
		{Name: "ratio", Type: "float", Default: 0.5},
		{Name: "force", Type: "bool"},
		{Name: "timeout", Type: "int"},
		{Name: "env", Type: "dict"},
		{Name: "extra", Type: "dict"},
		{Name: "args", Type: "list", Elements: "str"},
		{Name: "ports", Type: "list", Elements: "int", Choices: []string{"80", "443", "8080"}},
		{Name: "password", Type: "str", NoLog: true},
		{Name: "src", Type: "str"},
		{Name: "content", Type: "str"},
		{Name: "gate", Type: "dict", Suboptions: gate},
		{Name: "files", Type: "list", Elements: "dict", Suboptions: []OptionSpec{
			{Name: "path", Type: "path", Required: true},
			{Name: "mode", Type: "int"},
		}},
		{Name: "data", Type: "raw"},
		{Name: "behave", Type: "str", Choices: []string{"ok", "change", "fail", "panic", "fail_with_values", "reserved", "warn", "nan", "print"}},
	}, specs)
}

func TestDescribeDefaults(t *testing.T) {
	type o struct {
		B   bool                `ansible:"b" default:"yes"`
		F   *float64            `ansible:"f" default:"1e3"`
		L   []string            `ansible:"l" default:"a,b"`
		E   []int               `ansible:"e" default:""`
		Ch  string              `ansible:"ch" default:"" choices:",x"`
		P   []string            `ansible:"p" type:"path" default:"~/a"`
		Any []any               `ansible:"any"`
		LL  [][]int             `ansible:"ll"`
		LM  []map[string]string `ansible:"lm"`
	}
	specs, err := Describe[o]()
	require.NoError(t, err)
	assert.Equal(t, []OptionSpec{
		{Name: "b", Type: "bool", Default: true},
		{Name: "f", Type: "float", Default: 1000.0},
		{Name: "l", Type: "list", Elements: "str", Default: []string{"a", "b"}},
		{Name: "e", Type: "list", Elements: "int", Default: []string{}},
		{Name: "ch", Type: "str", Default: "", Choices: []string{"", "x"}},
		{Name: "p", Type: "list", Elements: "path", Default: []string{"~/a"}},
		{Name: "any", Type: "list", Elements: "raw"},
		{Name: "ll", Type: "list", Elements: "list"},
		{Name: "lm", Type: "list", Elements: "dict"},
	}, specs)
}

type recursive struct {
	Next *recursive `ansible:"next"`
}

func TestDescribeRejectsBadDeclarations(t *testing.T) {
	check := func(t *testing.T, err error, want string) {
		t.Helper()
		require.Error(t, err)
		assert.Equal(t, want, err.Error())
	}
	t.Run("not a struct", func(t *testing.T) {
		_, err := Describe[int]()
		check(t, err, "invalid options declaration int: options type must be a struct, got int")
	})
	t.Run("unexported", func(t *testing.T) {
		type o struct {
			x string `ansible:"x"`
		}
		_, err := Describe[o]()
		check(t, err, "invalid options declaration ansible.o: field x: unexported field has an ansible tag")
	})
	t.Run("recursive", func(t *testing.T) {
		_, err := Describe[recursive]()
		check(t, err, "invalid options declaration ansible.recursive: field Next: recursive options type ansible.recursive")
	})
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"bad name", func() error {
			_, err := Describe[struct {
				A string `ansible:"a-b"`
			}]()
			return err
		}, `field A: invalid option name "a-b"`},
		{"reserved prefix", func() error {
			_, err := Describe[struct {
				A string `ansible:"_ansible_x"`
			}]()
			return err
		}, `field A: invalid option name "_ansible_x"`},
		{"empty alias", func() error {
			_, err := Describe[struct {
				A string `ansible:"a" aliases:"b,"`
			}]()
			return err
		}, `field A: invalid alias ""`},
		{"duplicate", func() error {
			_, err := Describe[struct {
				A string `ansible:"a"`
				B string `ansible:"b" aliases:"a"`
			}]()
			return err
		}, `field B: name "a" declared twice`},
		{"type tag", func() error {
			_, err := Describe[struct {
				A string `ansible:"a" type:"bytes"`
			}]()
			return err
		}, `field A: unsupported type tag "bytes" (only path and raw override the Go type)`},
		{"path on int", func() error {
			_, err := Describe[struct {
				A int `ansible:"a" type:"path"`
			}]()
			return err
		}, `field A: type:"path" needs a string field, got int`},
		{"raw on string", func() error {
			_, err := Describe[struct {
				A string `ansible:"a" type:"raw"`
			}]()
			return err
		}, `field A: type:"raw" needs an any field, got string`},
		{"required and default", func() error {
			_, err := Describe[struct {
				A string `ansible:"a" required:"true" default:"x"`
			}]()
			return err
		}, `field A: required and default are mutually exclusive`},
		{"bool tag", func() error {
			_, err := Describe[struct {
				A string `ansible:"a" required:"yes"`
			}]()
			return err
		}, `field A: tag required:"yes": want true or false`},
		{"default on dict", func() error {
			_, err := Describe[struct {
				A map[string]string `ansible:"a" default:"x=1"`
			}]()
			return err
		}, `field A: default on a dict option is not supported`},
		{"default on list of dicts", func() error {
			_, err := Describe[struct {
				A []map[string]string `ansible:"a" default:"x"`
			}]()
			return err
		}, `field A: default on a list of dict is not supported`},
		{"bad int default", func() error {
			_, err := Describe[struct {
				A int `ansible:"a" default:"five"`
			}]()
			return err
		}, `field A: default "five": 'five' cannot be converted to an int`},
		{"bad list default", func() error {
			_, err := Describe[struct {
				A []int `ansible:"a" default:"1,x"`
			}]()
			return err
		}, `field A: default "1,x": 'x' cannot be converted to an int`},
		{"default not a choice", func() error {
			_, err := Describe[struct {
				A string `ansible:"a" choices:"x,y" default:"z"`
			}]()
			return err
		}, `field A: default: value of a must be one of: x, y, got: z`},
		{"list default not a choice", func() error {
			_, err := Describe[struct {
				A []int `ansible:"a" choices:"1,2" default:"1,3"`
			}]()
			return err
		}, `field A: default: value of a must be one or more of: 1, 2. Got no match for: 3`},
		{"choices on bool", func() error {
			_, err := Describe[struct {
				A bool `ansible:"a" choices:"true"`
			}]()
			return err
		}, `field A: choices on a bool option`},
		{"bad int choice", func() error {
			_, err := Describe[struct {
				A int `ansible:"a" choices:"1,b"`
			}]()
			return err
		}, `field A: choice "b": 'b' cannot be converted to an int`},
		{"chan", func() error {
			_, err := Describe[struct {
				A chan int `ansible:"a"`
			}]()
			return err
		}, `field A: unsupported Go type chan int`},
		{"pointer to pointer", func() error {
			_, err := Describe[struct {
				A **int `ansible:"a"`
			}]()
			return err
		}, `field A: pointer to pointer type **int`},
		{"pointer to slice", func() error {
			_, err := Describe[struct {
				A *[]int `ansible:"a"`
			}]()
			return err
		}, `field A: pointer to slice type *[]int (a nil slice already means absent)`},
		{"int map key", func() error {
			_, err := Describe[struct {
				A map[int]string `ansible:"a"`
			}]()
			return err
		}, `field A: map key type must be string in map[int]string`},
		{"interface with methods", func() error {
			_, err := Describe[struct {
				A error `ansible:"a"`
			}]()
			return err
		}, `field A: interface type error (only any is supported)`},
		{"nested error", func() error {
			_, err := Describe[struct {
				A []struct {
					B complex64 `ansible:"b"`
				} `ansible:"a"`
			}]()
			return err
		}, `field A: field B: unsupported Go type complex64`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Regexp(t, `^invalid options declaration struct `, err.Error())
		})
	}
}

func TestDescribeIsCached(t *testing.T) {
	a, err := Describe[exampleOptions]()
	require.NoError(t, err)
	b, err := Describe[exampleOptions]()
	require.NoError(t, err)
	assert.Equal(t, a, b)
	a[0].Name = "mutated"
	c, _ := Describe[exampleOptions]()
	assert.Equal(t, "name", c[0].Name, "callers get copies")
}
