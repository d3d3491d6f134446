"""Tools apart from the daemon: `monitor replay` (offline scoring and its quality report),
`monitor demo` and `monitor bench` (the daemon on an embedded broker), the compose stack's
synthetic producer (`python -m monitor.tools.produce`) and the README's configuration
reference (`python -m monitor.tools.config_reference`).

The daemon core never imports this package; the CLI dispatches to it.
"""
