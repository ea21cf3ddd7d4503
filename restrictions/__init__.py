"""The domain: customers, restrictions, routing decisions, contact counting and the audit trail."""
