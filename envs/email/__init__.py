"""EmailInbox: answer questions about one person's mailbox (ART·E style) on SQLite FTS5.

``env`` holds the environment, ``rewards`` ART·E's reward scheme, ``data`` the data specs,
``store`` the SQLite store, ``importers`` the maildir/CSV/JSONL importers, ``questions`` the
question generator for real mail and the ART·E loader, ``company`` the synthetic company.
"""
