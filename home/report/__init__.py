"""The monthly site report at home: the same report as the box's /report (core/report), built
from home's database, as HTML and PDF, and emailed on the first business day of each month."""
