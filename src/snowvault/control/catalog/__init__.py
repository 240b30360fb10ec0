"""Every SQL statement: tables, named query functions, migrations."""
