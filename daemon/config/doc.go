// Package config owns pcnoded's configuration: one documented struct with
// DefaultConfig, loading from TOML (/etc/pcnode/pcnoded.toml by default), and
// validation with errors that name the key. Flags live in cmd/pcnoded; they
// override fields of the loaded Config.
package config
