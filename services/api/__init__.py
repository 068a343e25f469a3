"""The toy helpdesk HTTP api: tickets, messages, views, agents, bulk actions, failpoints."""
