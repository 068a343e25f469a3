"""The toy helpdesk that Outage Lab breaks: api, relay, worker and live."""
