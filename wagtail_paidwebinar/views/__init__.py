"""Views of wagtail_paidwebinar (one module per area)."""
