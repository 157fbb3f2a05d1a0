"""Channel adapters, SMS gateways, configuration and the command line around the core."""
