"""One module per resource type, behind an explicit registry.

    from snowvault import plugins
    reg = plugins.builtin.registry()          # built in one place
    reg.get("Directory").check_source(path, policy)

- :mod:`~snowvault.plugins.base`: the ResourcePlugin protocol, the Sink and Source it
  works through, the request and resource types;
- :mod:`~snowvault.plugins.registry`: the Registry (duplicates raise);
- :mod:`~snowvault.plugins.builtin`: the registry of the types this server ships;
- :mod:`~snowvault.plugins.directory`: Directory, the first type;
- :mod:`~snowvault.plugins.errors`: the layer's errors.

Plugins sit beside the catalog and the engine: they may use the model and core, never
the engine, catalog, services or interfaces (import-linter contracts in pyproject.toml);
the services wire a plugin to the engine through a Sink and a Source.
"""

from snowvault.plugins import base, builtin, directory, errors, registry

__all__ = ["base", "builtin", "directory", "errors", "registry"]
