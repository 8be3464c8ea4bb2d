"""Grids of training runs (`lowres-mt sweep`): the data-efficiency study and recipe tuning."""
