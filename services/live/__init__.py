"""The live-update websocket server, its protocol and a reference client."""
