"""Paper experiments beyond single-task tuning: domain transfer (§5, Tables 1-2), prompt ensembling
(§6, Table 3) and prompt interpretability (§7), as jobs that run locally or as Ray tasks."""
