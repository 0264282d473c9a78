"""Pieces shared by the HTML reports and the status page: inline SVG charts, page styles."""
