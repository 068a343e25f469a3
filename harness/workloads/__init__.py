"""Clients that make traffic: messages, websocket agents, pollers, inbound email."""
