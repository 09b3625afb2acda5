"""dbr's engine: plans, journal, migrations, backups and health, without a UI."""
