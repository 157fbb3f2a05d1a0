"""Local stand-ins for the outside world the bot talks to (platforms, SMS gateways)."""
