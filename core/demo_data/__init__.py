"""The demo workspace's files: dbr.toml, an Alembic project and the shop's data."""
