"""Purchase writes: checkout (charge, then tickets or a refund) and refunds of purchases."""
