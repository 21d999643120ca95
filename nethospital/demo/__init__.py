"""Bilingual demo data, seeded through the real actions (``nethospital demo``); never in production."""
