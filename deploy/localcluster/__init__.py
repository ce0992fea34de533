"""The local cluster behind `make cluster` / `make demo` / `make down` (DESIGN §3)."""
