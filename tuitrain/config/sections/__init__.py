"""The config schema's sections, one module per TOML table (or a few close ones), so each is owned and read
on its own; `tuitrain.config.schema` joins them into `Config` with the rules that span sections."""
