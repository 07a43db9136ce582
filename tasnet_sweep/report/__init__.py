"""Records a person reads: summary TSVs, markdown reports, plots."""
