package controller

import (
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config (all defaults): %v", err)
	}
	cases := map[string]func(*Config){
		"negative session timeout":     func(c *Config) { c.SessionTimeout = -time.Second },
		"negative preferred interval":  func(c *Config) { c.PreferredLeaderInterval = -1 },
		"negative tick":                func(c *Config) { c.TickInterval = -1 },
		"negative request timeout":     func(c *Config) { c.RequestTimeout = -1 },
		"message size below a minimum": func(c *Config) { c.MaxMessageSize = 100 },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mut(&c)
			if c.Validate() == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
	if got := NewCore(Config{}).cfg.SessionTimeout; got != 6*time.Second {
		t.Fatalf("default session timeout %v", got)
	}
}
