package ansibletest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The controller's checks, through the same code the action plugin runs:
// each refusal with its message, and what a valid task sends the binary.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		module string
		args   map[string]any
		want   []string
	}{
		{"binary_stage", map[string]any{"src": "/b", "root": "/r", "slot": "blue", "colour_of_the_sky": 1},
			[]string{"Unsupported parameters for (binary_stage) module: colour_of_the_sky. Supported parameters include: allow_unsafe_mode,"}},
		{"binary_stage", map[string]any{"src": "/b", "url": "http://x/b", "root": "/r", "slot": "blue"},
			[]string{"parameters are mutually exclusive: src|url"}},
		{"binary_stage", map[string]any{"root": "/r", "slot": "blue"},
			[]string{"one of the following is required: src, url, manifest"}},
		{"binary_stage", map[string]any{"src": "/b", "root": "/r", "slot": "blue", "keep_releases": "many"},
			[]string{"argument 'keep_releases' is of type str and we were unable to convert to int: 'many' cannot be converted to an int"}},
		{"bluegreen_unit", map[string]any{"name": "x", "active": "blue", "action": "flip"},
			[]string{"parameters are mutually exclusive: active|action"}},
		{"bluegreen_unit", map[string]any{"name": "x", "strategy": "teleport", "hardening": map[string]any{"protect_proc": "zz", "bogus": 1}},
			[]string{"value of strategy must be one of: socket, reuseport, exclusive, got: teleport",
				"value of protect_proc must be one of: invisible, ptraceable, noaccess, default, got: zz found in hardening",
				"Unsupported parameters for (bluegreen_unit) module: hardening.bogus."}},
		{"bluegreen_unit", map[string]any{"name": "x", "health": map[string]any{"status": "ok"}},
			[]string{"argument 'health.status' is of type str and we were unable to convert to int: 'ok' cannot be converted to an int"}},
		{"source_build", map[string]any{"repo": "/srv/git/x.git"},
			[]string{"missing required arguments: dest, version"}},
	} {
		_, err := Validate(t, tc.module, tc.args)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %v: accepted, want %q", tc.module, tc.args, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(Message(err), w) {
				t.Errorf("%s %v:\n got %s\nwant %s", tc.module, tc.args, Message(err), w)
			}
		}
	}
}

func TestValidArguments(t *testing.T) {
	p, err := Validate(t, "source_build", map[string]any{"repo": "/srv/git/x.git", "version": "v1", "dest": "~/src/$X",
		"keyring": "/etc/k.gpg", "env": map[string]any{"TOKEN": "s3cr3t"}, "timeout": "90"})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"dest":                     "~/src/$X", // expanded by the binary, on the target
		"timeout":                  float64(90),
		"store":                    "/var/lib/chezlepro-sovereign/builds",
		"_chezlepro_no_log_values": []any{"/etc/k.gpg", "s3cr3t"},
		"name":                     nil,
	} {
		if got, ok := p[k]; !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", k, got, want)
		}
	}
	// hardening's defaults apply when it is not given; health's do not.
	var o struct {
		Hardening *struct {
			ProtectSystem string   `json:"protect_system"`
			Capabilities  []string `json:"capabilities"`
		} `json:"hardening"`
		Health *struct{} `json:"health"`
	}
	if err := Defaults("bluegreen_unit", map[string]any{"name": "x"}, &o); err != nil {
		t.Fatal(err)
	}
	if o.Hardening == nil || o.Hardening.ProtectSystem != "strict" || o.Hardening.Capabilities == nil || o.Health != nil {
		t.Errorf("defaults: hardening %+v, health %+v", o.Hardening, o.Health)
	}
}
