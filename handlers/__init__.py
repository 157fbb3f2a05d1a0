"""The conversation core: channel-agnostic registration logic on Inbound/Outbound values."""
